"""CLIP zero-shot baselines on exactly the questions the MLLM tasks ask (``clsbench clip``).

Modules: :mod:`.models` (the paper's six models, checking and loading open_clip models),
:mod:`.zeroshot` (prompt ensembles, cached class embeddings, batched predictions),
:mod:`.run` (datasets, resume, data parallelism), :mod:`.results` (the on-disk format),
:mod:`.tiny` (a tiny random model for tests and the demo), :mod:`.demo`, :mod:`.cli`.
Imports stay lazy here so ``clsbench --help`` does not pay for torch and open_clip.
"""
