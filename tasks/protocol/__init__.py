"""Layer 1, pure rules: the registry, the variant catalog, option draws, questions, the parser, the paper's numbers.

Nothing here reads data or talks to a toolkit, so lmms-eval, VLMEvalKit and the CLIP baselines ask the same
questions from it."""
