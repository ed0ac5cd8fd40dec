"""VLMEvalKit integration: MCQ TSVs with the lmms-eval tasks' questions, dataset classes scored by our parser, a runner.

(The issue calls this ``clsbench.vlmeval``; the package layout puts toolkit adapters under
``clsbench.tasks``, so it is ``clsbench.tasks.toolkits.vlmeval``.)

* :func:`write_tsv` / ``clsbench export-vlmeval DATASET... --output-dir DIR`` writes one VLMEvalKit MCQ
  TSV per dataset (``ClsBench_food101.tsv``, names from the registry): columns ``index``
  (the sample key), ``question``, option columns ``A``.. (class names), ``answer`` (letter),
  ``image`` (base64 of the stored bytes, never re-encoded), ``category`` (general /
  fine-grained), ``split``, and ``dataset``, ``sample_key``, ``label`` for traceability. Rows come
  from :func:`clsbench.tasks.data.samples.add_questions`, so the questions are the lmms-eval tasks' own.
* :func:`register` (needs ``vlmeval``) inserts one dataset class per dataset into
  ``vlmeval.dataset.DATASET_CLASSES`` and our model wrappers into ``vlmeval.config.supported_VLM``.
  The classes ask the paper's prompt for every model (``force_use_dataset_prompt``), decode images
  with our reader, and score with :func:`clsbench.tasks.protocol.parsing.parse_answer`, never VLMEvalKit's
  ``can_infer`` (a failed parse there returns ``Z``, which scores right whenever Z is the answer), writing the usual
  ``<model>_<data>_clsbench_result.xlsx`` and ``<model>_<data>_acc.csv``.
* :func:`run_vlmeval` / ``clsbench vlmeval --model NAME --data NAME...`` registers and then runs
  VLMEvalKit's own ``run.py`` in this process, so its work-dir layout and leaderboard workflow are
  unchanged.

VLMEvalKit has no plugin hook, so registration mutates its module-level lists in place; it
must happen in every process that builds datasets or models (under ``torchrun``, every rank runs
``clsbench vlmeval``, which registers first).
"""

from __future__ import annotations

import base64
import csv
import math
import os
import runpy
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import ClassVar

from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import add_questions, open_image
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import INSTRUCTION, SampleError, format_prompt, score_reply
from clsbench.tasks.protocol.registry import DATASETS, DEFAULT_NAMES, get_dataset

RESULT_SUFFIX = "_clsbench_result"


def vlmeval_name(key: str) -> str:
    """The VLMEvalKit dataset name (``ClsBench_food101``: the registry's; it trips none of VLMEvalKit's name checks)."""
    return get_dataset(key).vlmeval_name


# Every VLMEvalKit name: the paper's questions per dataset, plus one per alternative class-name set.
VLMEVAL_DATASETS: dict[str, tuple[str, str]] = {
    spec.vlmeval_name_for(name_set): (key, name_set) for key, spec in DATASETS.items() for name_set in spec.name_sets
}
NAME_TO_KEY = {name: key for name, (key, _) in VLMEVAL_DATASETS.items()}


def _image_bytes(image: dict, key: str, sample_key: str) -> bytes:
    if image.get("bytes") is not None:
        return image["bytes"]
    if image.get("path"):
        try:
            return Path(image["path"]).read_bytes()
        except OSError as error:
            raise SampleError(f"{key} sample {sample_key}: cannot read the image file: {error}") from error
    raise SampleError(f"{key} sample {sample_key}: no image data")


def tsv_columns(n_options: int) -> list[str]:
    return [
        "index",
        "question",
        *LETTERS[:n_options],
        "answer",
        "category",
        "split",
        "dataset",
        "sample_key",
        "label",
        "image",
    ]


def tsv_rows(key: str, data_dir: str | os.PathLike | None = None, name_set: str = DEFAULT_NAMES) -> Iterator[dict]:
    """The dataset's questions as VLMEvalKit MCQ rows (the same docs the lmms-eval task builds)."""
    spec = get_dataset(key)
    docs = add_questions(load_rows(key, data_dir), key, name_set=name_set)
    split = getattr(spec.source, "split", "test")
    for doc in docs:
        # Decoded once with the decoder every toolkit uses, so a bad image fails here as it would in lmms-eval
        # and the CLIP baselines; the TSV keeps the original bytes.
        open_image(doc["image"], dataset=key, sample_key=doc["sample_key"], source_id=doc.get("source_id"))
        row = {
            "index": int(doc["sample_key"]),
            "question": doc["question"],
            **dict(zip(LETTERS, doc["options"])),
            "answer": doc["answer"],
            "category": spec.group or "extra",
            "split": split,
            "dataset": key,
            "sample_key": doc["sample_key"],
            "label": doc["label"],
            "image": base64.b64encode(_image_bytes(doc["image"], key, doc["sample_key"])).decode("ascii"),
        }
        yield row


def write_tsv(
    key: str, out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, name_set: str = DEFAULT_NAMES
) -> Path:
    """Write ``<out_dir>/<VLMEvalKit name>.tsv``, streaming (ImageNet's is several GB).

    Args:
        key: the registry key.
        out_dir: the TSV folder (VLMEvalKit's ``$LMUData``).
        data_dir: the data root.
        name_set: the class names shown (``paper``, or ``openai`` for ImageNet).

    Returns:
        The TSV's path (written to a partial file first, so a killed export leaves no half TSV).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{get_dataset(key).vlmeval_name_for(name_set)}.tsv"
    partial = target.with_name(f".{target.name}.partial")
    rows = tsv_rows(key, data_dir, name_set)
    first = next(rows, None)
    if first is None:
        raise SampleError(f"{key}: the split has no rows")
    n_options = sum(letter in first for letter in LETTERS)
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=tsv_columns(n_options), delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerow(first)
            writer.writerows(rows)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _missing(value) -> bool:
    """None or NaN: how pandas hands back an empty TSV / xlsx cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def row_options(row) -> list[str]:
    """Option class names of a TSV / prediction row (``A``.. columns that are present and not empty)."""
    options = []
    for letter in LETTERS:
        value = row.get(letter) if hasattr(row, "get") else None
        if _missing(value):
            break
        options.append(str(value))
    return options


def score_rows(rows: Iterable) -> list[dict]:
    """Per-row scores of predictions with our parser: ``parsed``, ``hit``, ``unparseable``."""
    records = []
    for row in rows:
        prediction = row.get("prediction")
        text = "" if _missing(prediction) else str(prediction)
        record = score_reply(text, row_options(row), str(row["answer"]))
        records.append(
            {"parsed": record["parsed"] or "", "hit": record["correct"], "unparseable": record["unparseable"]}
        )
    return records


def prompt_message(row, image_paths: Sequence[str]) -> list[dict]:
    """VLMEvalKit's message for a row: the images, then the paper's prompt, and nothing else.

    Model wrappers read the options and the question back from the prompt text
    (:func:`clsbench.tasks.protocol.questions.prompt_parts`), as any VLMEvalKit model would.
    """
    text = format_prompt(str(row["question"]), row_options(row), instruction=INSTRUCTION)
    return [*({"type": "image", "value": path} for path in image_paths), {"type": "text", "value": text}]


@cache
def dataset_classes() -> dict[str, type]:
    """One ``ImageMCQDataset`` subclass per dataset, keyed by VLMEvalKit name (needs ``vlmeval``)."""
    from vlmeval.dataset.image_mcq import ImageMCQDataset
    from vlmeval.dataset.utils.multiple_choice import report_acc
    from vlmeval.smp import LMUDataRoot, dump, get_intermediate_file_path, load, read_ok

    class ClsbenchMCQDataset(ImageMCQDataset):
        """A clsbench 26-option classification dataset read from ``$LMUData/<name>.tsv``."""

        TYPE = "MCQ"
        DATASET_URL: ClassVar[dict] = {}
        DATASET_MD5: ClassVar[dict] = {}
        force_use_dataset_prompt = True  # the paper's prompt for every model, as in lmms-eval

        def load_data(self, dataset):
            path = Path(LMUDataRoot()) / f"{dataset}.tsv"
            if not path.is_file():
                key = NAME_TO_KEY.get(dataset, "DATASET")
                raise FileNotFoundError(
                    f"{dataset}: no {path}. Write it with `clsbench export-vlmeval {key} --output-dir {path.parent}` "
                    "(or run `clsbench vlmeval`, which exports missing TSVs)"
                )
            return super().load_data(dataset)  # VLMEvalKit's reader, including its >1 GB localisation

        def dump_image(self, line):
            if "image" not in line or not isinstance(line["image"], str):
                return super().dump_image(line)
            target = Path(self.img_root) / f"{line['index']}.png"
            if not read_ok(str(target)):
                dataset = str(line.get("dataset", self.dataset_name))
                image = open_image(
                    {"bytes": base64.b64decode(line["image"])},
                    dataset=dataset,
                    sample_key=str(line.get("sample_key", line["index"])),
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                image.save(target, format="PNG")  # lossless, so the pixels are the ones lmms-eval decodes
            return [str(target)]

        def build_prompt(self, line):
            if isinstance(line, int):
                line = self.data.iloc[line]
            paths = self.dump_image(line) if not self.meta_only else list(line["image_path"])
            return prompt_message(line, paths)

        def evaluate(self, eval_file, **judge_kwargs):
            data = load(eval_file).sort_values(by="index")
            meta = {str(row["index"]): row for _, row in self.data.iterrows()}
            missing = [index for index in data["index"] if str(index) not in meta]
            if missing:
                raise ValueError(f"{self.dataset_name}: predictions for indices not in the dataset: {missing[:5]}")
            rows = []
            for _, prediction in data.iterrows():
                row = dict(meta[str(prediction["index"])])
                row["prediction"] = prediction.get("prediction")
                rows.append(row)
            scores = score_rows(rows)
            for column in ("parsed", "hit", "unparseable"):
                data[column] = [score[column] for score in scores]
            dump(data, get_intermediate_file_path(eval_file, RESULT_SUFFIX))
            accuracy = report_acc(data.copy())
            accuracy["unparseable_rate"] = [
                float(data[data["split"] == split]["unparseable"].mean())
                if "split" in data
                else float(data["unparseable"].mean())
                for split in accuracy["split"]
            ]
            dump(accuracy, get_intermediate_file_path(eval_file, "_acc", "csv"))
            return accuracy

    ClsbenchMCQDataset.__module__ = __name__
    classes = {}
    for name, (key, name_set) in VLMEVAL_DATASETS.items():
        suffix = "" if name_set == DEFAULT_NAMES else name_set.capitalize()
        class_name = f"ClsBench{key[0].upper()}{key[1:]}{suffix}Dataset"
        cls = type(
            class_name, (ClsbenchMCQDataset,), {"DATASET_URL": {name: ""}, "DATASET_MD5": {}, "__module__": __name__}
        )
        classes[name] = cls
        globals()[class_name] = cls  # importable by name (pickling, --config "class")
    globals()["ClsbenchMCQDataset"] = ClsbenchMCQDataset
    return classes


def register_datasets() -> list[str]:
    """Make our datasets known to VLMEvalKit, in this process; idempotent. Returns their names.

    The model wrappers are registered by :func:`clsbench.models.vlmeval.registration.register`,
    which calls this too (models sit above the task toolkits, so the joining happens there).
    """
    import vlmeval.dataset as vlm_dataset

    for name, cls in dataset_classes().items():
        if cls not in vlm_dataset.DATASET_CLASSES:
            vlm_dataset.DATASET_CLASSES.insert(0, cls)
        if name not in vlm_dataset.SUPPORTED_DATASETS:
            vlm_dataset.SUPPORTED_DATASETS.append(name)
        setattr(vlm_dataset, cls.__name__, cls)
    return list(dataset_classes())


def find_run_py(explicit: str | None = None) -> Path:
    """VLMEvalKit's ``run.py``: given, ``$VLMEVAL_RUN_PY``, or next to the ``vlmeval`` package (an editable install)."""
    import vlmeval

    candidates = [
        explicit,
        os.environ.get("VLMEVAL_RUN_PY"),
        str(Path(vlmeval.__file__).resolve().parent.parent / "run.py"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "VLMEvalKit's run.py was not found next to the vlmeval package; install VLMEvalKit from a clone "
        "(pip install -e VLMEvalKit) or pass --run-py PATH/TO/VLMEvalKit/run.py"
    )


def result_files(work_dir: str | os.PathLike, model: str, data: str, newer_than: float = 0.0) -> list[Path]:
    """The ``_acc`` score files VLMEvalKit wrote for a model and dataset, oldest first (it exits 0 even on failure)."""
    root = Path(work_dir) / model
    if not root.is_dir():
        return []
    found = [
        path for path in root.rglob(f"{model}_{data}_acc.*") if path.is_file() and path.stat().st_mtime >= newer_than
    ]
    return sorted(found, key=lambda path: (path.stat().st_mtime, str(path)))


def run_vlmeval(
    models: Sequence[str],
    data: Sequence[str],
    *,
    work_dir: str = "./outputs",
    lmu_data: str | None = None,
    data_dir: str | None = None,
    model_args: dict | None = None,
    run_py: str | None = None,
    extra_args: Sequence[str] = (),
    register: Callable[[dict | None], object] | None = None,
) -> int:
    """Export missing TSVs, register, and run VLMEvalKit's ``run.py`` with ``--model``/``--data``.

    Args:
        register: registers datasets and models (the CLI passes
            :func:`clsbench.models.vlmeval.registration.register`); default: the datasets only.

    Returns:
        0 when every (model, dataset) pair wrote a score, else 1.
    """
    unknown = [name for name in data if name not in NAME_TO_KEY]
    if unknown:
        raise KeyError(f"unknown clsbench VLMEvalKit dataset(s) {unknown}; choose from {', '.join(NAME_TO_KEY)}")
    root = Path(lmu_data or os.environ.get("LMUData") or Path.home() / "LMUData").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["LMUData"] = str(root)
    for name in data:
        if not (root / f"{name}.tsv").is_file():
            print(f"clsbench vlmeval: exporting {name}.tsv to {root}", file=sys.stderr)
            key, name_set = VLMEVAL_DATASETS[name]
            write_tsv(key, root, data_dir, name_set)
    if register is None:
        register_datasets()
    else:
        register({name: model_args for name in models} if model_args else None)
    script = find_run_py(run_py)
    argv = [str(script), "--model", *models, "--data", *data, "--work-dir", work_dir, *extra_args]
    started = time.time()
    saved_argv = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved_argv
    if _mode(extra_args) == "infer":
        return 0
    missing = [(model, name) for model in models for name in data if not result_files(work_dir, model, name, started)]
    if missing:
        for model, name in missing:
            print(
                f"clsbench vlmeval: no score file for {model} x {name} under {work_dir}: the run failed (see its log)",
                file=sys.stderr,
            )
        return 1
    return 0


def print_table(work_dir: str, models: Sequence[str], names: Sequence[str]) -> None:
    """The paper's table (accuracy %, group means when complete) from VLMEvalKit's newest ``_acc`` files."""
    import csv as csv_module

    from clsbench.tasks.report.lmms_results import markdown_table, table_row

    rows = {}
    for model in models:
        scores = {}
        for name in names:
            files = result_files(work_dir, model, name)
            if files:
                with files[-1].open(encoding="utf-8") as handle:
                    first = next(csv_module.DictReader(handle), None)
                if first and first.get("Overall") not in (None, ""):
                    scores[NAME_TO_KEY[name]] = float(first["Overall"])
        rows[model] = table_row(scores)
    print(markdown_table(rows))


def _mode(args: Sequence[str]) -> str:
    for index, arg in enumerate(args):
        if arg == "--mode" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--mode="):
            return arg.split("=", 1)[1]
    return "all"


def parse_model_args(text: str | None) -> dict:
    """``k=v,k2=v2`` (lm-eval-harness style) into keyword arguments, with booleans and numbers converted."""
    if not text:
        return {}
    result = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"model args must be key=value pairs, got {part!r}")
        key, value = part.split("=", 1)
        result[key.strip()] = _convert(value.strip())
    return result


def _convert(value: str):
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
