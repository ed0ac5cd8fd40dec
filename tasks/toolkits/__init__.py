"""Layer 6: the toolkits' side: running lmms-eval's CLI, VLMEvalKit's datasets and TSVs, the upstream kit."""
