"""The one engine behind every MLLM adapter: a transformers image-text model, answer modes, logs, the answer store."""
