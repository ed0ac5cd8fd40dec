"""VLMEvalKit adapters: the ``ClsbenchVLM`` model wrapper and the registration of datasets and models."""
