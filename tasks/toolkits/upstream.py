"""``clsbench upstream-lmms-eval DEST``: the task folder as it would go into lmms-eval's ``lmms_eval/tasks/``.

It is the package's own folder (the generated YAMLs and README, ``utils.py`` and the variant folders'
hooks, the templates, ``_generate_configs.py`` and the one-row sentinel parquet), with no local
path in it: Hub datasets are read at their pinned revisions, local ones (ObjectNet, Caltech-101,
Google Landmarks v2, FlickrSportLogos-10) from ``$CLSBENCH_DATA``
after ``clsbench prepare``. Beside it, ``PR.md`` is the pull request's description.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from clsbench.tasks.cls_mcq._generate_configs import DATA_ROOT_MARKER, PACKAGE_TASK_FOLDER


def pr_text(version: str) -> str:
    return f"""# Add cls_mcq: 26-option image classification (Revisiting MLLMs, arXiv 2412.16418)

## What
A task family `cls_<dataset>_mcq` over ten image-classification datasets (ImageNet, ImageNetV2, ObjectNet,
Caltech-101; CUB-200, Food-101, Google Landmarks v2, FlickrSportLogos-10, Flowers-102, Stanford Cars),
groups `cls_general_mcq`, `cls_finegrained_mcq`, `cls_mcq`, and protocol variants (option count, hard
negatives, free-form answers, the text-only test). See `lmms_eval/tasks/cls_mcq/README.md`.

## Why
Image classification is a capability MLLM papers report, but lmms-eval has no task for it at scale.
This reproduces the protocol of arXiv 2412.16418 (its Table 2), with options that are a pure function
of (dataset, sample, seed), so results are comparable across toolkits and runs.

## Dependencies
`clsbench=={version}` (PyPI), which `utils.py` imports for the question builder and the answer parser
(one implementation for every toolkit). It depends on lmms-eval itself, datasets, Pillow; no model code.

## Data and licences
- Hub datasets at pinned revisions, each reading only its evaluation split's files: ILSVRC/imagenet-1k
  (gated: accept the ImageNet terms), djghosh/wds_imagenetv2_test, bentrevett/caltech-ucsd-birds-200-2011,
  ethz/food101, dpdl-benchmark/oxford_flowers102, tanganke/stanford_cars (each under its own licence).
- Local datasets, built by `clsbench prepare <dataset> --source RAW --data-dir DIR` and read from
  `$CLSBENCH_DATA`: ObjectNet (its licence forbids training on it and requires the 1-pixel border on
  published images), Caltech-101, Google Landmarks v2 (test subset), FlickrSportLogos-10. Until they are
  prepared, those tasks fail with the command that builds them.

## How to test
```bash
pip install clsbench=={version}
lmms-eval --model dummy --model_args response=A --tasks cls_food101_mcq --limit 8 --output_path out/
CLSBENCH_DATA=~/clsbench-data lmms-eval --model llava_hf --model_args pretrained=llava-hf/llava-1.5-7b-hf \\
  --tasks cls_mcq --batch_size 1 --output_path out/
```
The `dummy` model scores exactly the share of questions whose answer is its letter; an oracle scores 100 %.
"""


def write_upstream_kit(dest: str | Path, version: str) -> Path:
    """Write ``DEST/cls_mcq/`` (the folder for ``lmms_eval/tasks/``) and ``DEST/PR.md``; returns the folder."""
    dest = Path(dest)
    folder = dest / "cls_mcq"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(PACKAGE_TASK_FOLDER, folder, ignore=shutil.ignore_patterns("__pycache__", DATA_ROOT_MARKER))
    (dest / "PR.md").write_text(pr_text(version), "utf-8")
    return folder
