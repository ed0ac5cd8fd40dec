"""``clsbench demo``: the whole benchmark path, offline, in about a minute on a laptop CPU.

Fixture copies of all ten datasets (synthetic images, real class lists), a tiny random-weight
LLaVA-1.5 built from config classes, the ten tasks through the real lmms-eval CLI (as
``clsbench_hf`` in ``score`` mode: one forward pass, argmax over the option letters), a tiny
random-weight open_clip model on the same questions, then the report: the paper's table with both
rows, figures and per-class accuracy. Random models answer noise, so expect accuracy near chance:
the point is that every stage runs for real.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from clsbench.tasks.data.fixtures import write_fixture_data
from clsbench.tasks.protocol.catalog import ALL_TASKS_GROUP
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.report.build import write_report
from clsbench.tasks.toolkits.lmms_runner import run_lmms

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # The fixtures are small on purpose: no warning that they are not the paper's size.
    "PYTHONWARNINGS": "ignore::clsbench.tasks.data.loading.PartialSplitWarning",
}


def run_demo(work_dir: Path, samples: int = 8) -> int:
    import warnings

    from clsbench.clip_baselines.demo import run_clip_demo
    from clsbench.models.fixtures import build_tiny_llava
    from clsbench.tasks.data.loading import PartialSplitWarning

    warnings.filterwarnings("ignore", category=PartialSplitWarning)
    work_dir = work_dir.resolve()
    for stale in (
        "results",
        "clip_results",
        "report",
        "model_logs",
    ):  # a demo starts clean; only the model builds are reused
        shutil.rmtree(work_dir / stale, ignore_errors=True)
    data_dir = write_fixture_data(work_dir / "data", samples, progress=False)  # seconds: no bars before the table
    model_dir = build_tiny_llava(work_dir / "tiny-llava")
    print(
        f"clsbench demo: {samples} fixture samples x {len(DATASETS)} datasets in {data_dir}; tiny LLaVA in {model_dir}"
    )
    code, _ = run_lmms(
        [
            "--model",
            "clsbench_hf",
            "--model_args",
            f"pretrained={model_dir},mode=score,log_dir={work_dir / 'model_logs'}",
            "--tasks",
            ALL_TASKS_GROUP,
            "--batch_size",
            "8",
            "--output_path",
            str(work_dir / "results"),
            "--log_samples",
        ],
        data_dir=data_dir,
        env={**os.environ, **OFFLINE_ENV},
        log_file=work_dir / "lmms_eval.log",  # lmms-eval's own log lines stay out of the demo's output
    )
    print(f"clsbench demo: lmms-eval's log is in {work_dir / 'lmms_eval.log'}")
    if code != 0:
        return code
    print("\nclsbench demo: the tiny random-weight open_clip model on the same questions (mcq mode)")
    run_clip_demo(work_dir, data_dir)
    print(f"\nReport (table, figures, per-class accuracy) in {work_dir / 'report'}:\n")
    write_report(
        [work_dir / "results", work_dir / "clip_results"],
        work_dir / "report",
        data_dir=data_dir,
        reference="paper",
        rename={f"clsbench_hf ({model_dir.name}) [score]": "tiny LLaVA-1.5, clsbench_hf score (random weights)"},
    )
    return 0
