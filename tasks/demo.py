"""``clsbench demo``: the whole benchmark path, offline, in about a minute on a laptop CPU.

Fixture copies of all ten datasets (synthetic images, real class lists), a tiny random-weight
LLaVA-1.5 built from config classes, the ten tasks through the real lmms-eval CLI (its built-in
``llava_hf`` model), then the paper's table with one row. A random model answers noise, so expect
accuracy near zero and a high unparseable rate: the point is that every stage runs for real.
"""

from __future__ import annotations

import os
from pathlib import Path

from .cli import run_lmms
from .fixtures import write_fixture_data
from .lmms_tasks import ALL_TASKS_GROUP, task_name
from .registry import DATASETS
from .results import dataset_accuracies, markdown_table, read_results, table_row

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_demo(work_dir: Path, samples: int = 8) -> int:
    from clsbench.models.tiny import build_tiny_llava

    work_dir = work_dir.resolve()
    data_dir = write_fixture_data(work_dir / "data", samples)
    model_dir = build_tiny_llava(work_dir / "tiny-llava")
    print(f"clsbench demo: {samples} fixture samples x {len(DATASETS)} datasets in {data_dir}; tiny LLaVA in {model_dir}")
    code, written = run_lmms(
        [
            "--model", "llava_hf",
            "--model_args", f"pretrained={model_dir},device_map=cpu,device=cpu",
            "--tasks", ALL_TASKS_GROUP,
            "--batch_size", "1",
            "--output_path", str(work_dir / "results"),
            "--log_samples",
        ],
        data_dir=data_dir,
        env={**os.environ, **OFFLINE_ENV},
    )
    if code != 0:
        return code
    results = read_results(written[-1])
    print(f"\nAccuracy (%) of a random-weight tiny LLaVA on the fixtures ({written[-1]}):\n")
    print(markdown_table({"tiny-llava (random weights)": table_row(dataset_accuracies(results))}))
    unparseable = {
        DATASETS[key].abbreviation: results["results"][task_name(key)].get("unparseable_rate,none")
        for key in DATASETS
        if task_name(key) in results["results"]
    }
    print("\nUnparseable-answer rate: " + ", ".join(f"{name} {rate:.0%}" for name, rate in unparseable.items()))
    return 0
