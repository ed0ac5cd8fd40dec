"""Make the local copy a cls_mcq task reads, for the datasets that are not on the Hub in the reference form.

ObjectNet (licence-bound), Google Landmarks v2's test subset and FlickrSportLogos-10 (no licence stated) cannot be
re-hosted, so each user builds them from the raw files. This script does not re-implement the conversion: it
runs ``clsbench prepare`` (``pip install`` clsbench from its repository; it is not on PyPI), which writes the one
standard layout ``ROOT/<dataset>/data/test-*.parquet`` (columns ``image`` {bytes, path}, ``label``,
``source_id``), and then points this folder's ``_<dataset>_source_yaml`` at those files. With ``--prepared DIR``
it only points the YAML at an existing copy (``DIR/data/test-*.parquet``), with no clsbench at all.

    python convert_dataset.py logo --source FlickrSportLogos-10/ --data-dir ~/cls-data
    python convert_dataset.py logo --prepared ~/cls-data/logo
"""

from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def point_source_yaml(key: str, prepared: Path, folder: Path = FOLDER) -> Path:
    """Rewrite ``_<key>_source_yaml`` to read ``prepared/data/test-*.parquet``; returns the YAML's path."""
    pattern = prepared.resolve() / "data" / "test-*.parquet"
    if not glob.glob(str(pattern)):
        raise SystemExit(f"convert_dataset.py: no parquet files match {pattern}")
    target = folder / f"_{key}_source_yaml"
    if not target.is_file():
        raise SystemExit(f"convert_dataset.py: {target} does not exist: is {key!r} a dataset of this folder?")
    title = next((line for line in target.read_text("utf-8").splitlines() if line.startswith("# ")), f"# {key}")
    lines = [
        "# Pointed at a local copy by convert_dataset.py.",
        title,
        "dataset_path: parquet",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {pattern}",
        "test_split: test",
    ]
    target.write_text("\n".join(lines) + "\n", "utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="the dataset key (objectnet, gldv2, logo, or any other of this folder)")
    parser.add_argument("--source", help="the raw files, as `clsbench prepare` takes them")
    parser.add_argument("--data-dir", default="~/.cache/clsbench/data", help="where the local copy is written")
    parser.add_argument("--prepared", help="an existing prepared copy (the folder holding data/test-*.parquet)")
    parser.add_argument("--subset", help="gldv2: a file of test image ids to keep")
    args = parser.parse_args(argv)
    if args.prepared:
        prepared = Path(args.prepared).expanduser()
    else:
        if not args.source:
            parser.error("give --source RAW_DIR (to build the copy) or --prepared DIR (to use one)")
        clsbench = shutil.which("clsbench")
        if clsbench is None:
            raise SystemExit(
                "convert_dataset.py: building a local copy runs `clsbench prepare`; install clsbench from its "
                "repository (pip install -e .) or pass --prepared DIR"
            )
        root = Path(args.data_dir).expanduser()
        command = [clsbench, "prepare", args.dataset, "--source", args.source, "--data-dir", str(root)]
        if args.subset:
            command += ["--subset", args.subset]
        subprocess.run(command, check=True)
        prepared = root / args.dataset
    target = point_source_yaml(args.dataset, prepared)
    print(f"{target.name} now reads {prepared.resolve() / 'data'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
