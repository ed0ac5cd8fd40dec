"""lmms-eval adapters: ``clsbench_hf``, ``clsbench_minicpm`` and the entry point that registers them."""
