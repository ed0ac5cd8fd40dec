"""Make clsbench's model wrappers known to VLMEvalKit, in this process (the command line registers the datasets)."""

from __future__ import annotations

from functools import partial

from clsbench.models.catalog import vlmeval_models


def register_models(models: dict[str, dict] | None = None) -> list[str]:
    """Register our model wrappers with VLMEvalKit; idempotent.

    Args:
        models: extra or replacing ``supported_VLM`` entries: name -> keyword arguments of
            :class:`clsbench.models.vlmeval.model.ClsbenchVLM` (``model_path``, ``mode``, ...).

    Returns:
        The registered model names.
    """
    import vlmeval.config as vlm_config
    import vlmeval.vlm as vlm_models

    from clsbench.models.vlmeval.model import ClsbenchVLM

    setattr(vlm_models, ClsbenchVLM.__name__, ClsbenchVLM)
    entries = {**vlmeval_models(), **(models or {})}
    for name, kwargs in entries.items():
        vlm_config.supported_VLM[name] = partial(ClsbenchVLM, **kwargs)
    return list(entries)
