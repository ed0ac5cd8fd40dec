"""Make clsbench's datasets and model wrappers known to VLMEvalKit, in this process."""

from __future__ import annotations

from functools import partial

from clsbench.models.catalog import vlmeval_models
from clsbench.tasks.toolkits.vlmeval import register_datasets


def register(models: dict[str, dict] | None = None) -> dict[str, list[str]]:
    """Register our datasets and model wrappers with VLMEvalKit; idempotent.

    Args:
        models: extra or replacing ``supported_VLM`` entries: name -> keyword arguments of
            :class:`clsbench.models.vlmeval.model.ClsbenchVLM` (``model_path``, ``mode``, ...).

    Returns:
        The registered dataset and model names.
    """
    import vlmeval.config as vlm_config
    import vlmeval.vlm as vlm_models

    from clsbench.models.vlmeval.model import ClsbenchVLM

    datasets = register_datasets()
    setattr(vlm_models, ClsbenchVLM.__name__, ClsbenchVLM)
    entries = {**vlmeval_models(), **(models or {})}
    for name, kwargs in entries.items():
        vlm_config.supported_VLM[name] = partial(ClsbenchVLM, **kwargs)
    return {"datasets": datasets, "models": list(entries)}
