"""The CLIP half of ``clsbench demo``: a tiny random open_clip model on the demo's fixture questions."""

from __future__ import annotations

import os
from pathlib import Path

from clsbench.clip_baselines.fixtures import TINY_LABEL, build_tiny_clip, tiny_model_name
from clsbench.tasks.data.loading import find_prepared
from clsbench.tasks.protocol.catalog import ALL_TASKS_GROUP, resolve_datasets

DEMO_LABEL = f"{TINY_LABEL}, mcq"


def run_clip_demo(
    work_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    templates: str = "ensemble",
    progress: bool = False,
) -> dict[str, float]:
    """Accuracy (0..1) per dataset of a tiny random open_clip model in mcq mode, on the prepared data in ``data_dir``.

    Same questions as the MLLM row (seed 0, 26 options); results land in ``work_dir/clip_results``
    in the usual format, and a second call resumes (returns at once). Most of a first call's time
    is tokenizing ImageNet's 80 x 1000 prompts; ``templates="single"`` skips that.
    """
    from clsbench.clip_baselines.run import run_clip

    work_dir = Path(work_dir).resolve()
    model_dir = build_tiny_clip(work_dir / "tiny-clip")
    paper = resolve_datasets(ALL_TASKS_GROUP)  # the same datasets as the demo's lmms-eval run: the paper's
    keys = [key for key in paper if find_prepared(key, data_dir) is not None] or paper
    summaries = run_clip(
        tiny_model_name(model_dir),
        None,
        keys,
        work_dir / "clip_results",
        mode="mcq",
        templates=templates,
        data_dir=data_dir,
        cache_dir=work_dir / "clip_text_cache",
        cpu=True,
        progress=progress,
    )
    return {key: summary["accuracy"] for key, summary in summaries.items()}
