"""VLMEvalKit integration, one concern per module (as CLIP_benchmark keeps them).

* :mod:`.names`: the VLMEvalKit dataset names (from the registry) and ``$LMUData``'s layout.
* :mod:`.export`: the MCQ TSV with the lmms-eval tasks' questions, its sidecar, image files and stamps
  (``clsbench export-vlmeval``).
* :mod:`.rows`: a row's options, the paper's prompt, scoring with clsbench's parser, row metadata.
* :mod:`.datasets` (needs ``vlmeval``): the ``ImageMCQDataset`` subclass and its registration.
* :mod:`.run`: ``clsbench vlmeval``: export what is stale, register, run VLMEvalKit's ``run.py``, print the table.

Only :mod:`.datasets` imports VLMEvalKit; the command line registers the datasets and the model wrappers
(:func:`clsbench.models.vlmeval.registration.register_models`) side by side.
"""
