"""VLMEvalKit integration: MCQ TSVs with the lmms-eval tasks' questions, dataset classes scored by our parser, a runner.

* :func:`write_tsv` / ``clsbench export-vlmeval DATASET... --output-dir DIR`` writes one VLMEvalKit MCQ
  TSV per dataset (``ClsBench_food101.tsv``, names from the registry): ``index`` (the sample key),
  ``question``, option columns ``A``.. (class names), ``answer`` (letter), ``category``, ``split``,
  ``dataset``, ``sample_key``, ``label``, and the image either inline (``image``: base64 of the stored
  bytes) or as the original file (``image_path``, under ``$LMUData/images/<name>/``), plus a sidecar
  (``<name>.clsbench.json``: data root, class names, sha256, decoded images). An image the one decoder
  changes (16-bit, EXIF orientation, CMYK, palette) is exported as its decoded pixels in PNG instead. Rows come from
  :func:`clsbench.tasks.data.samples.add_questions`, so the questions are the lmms-eval tasks' own.
* :func:`dataset_classes` (needs ``vlmeval``): one ``ImageMCQDataset`` subclass per dataset. They ask the
  paper's prompt for every model (``force_use_dataset_prompt``), read the TSV themselves
  (:func:`prepare_images`: never VLMEvalKit's lossy localization, never a stale decoded image), and score
  with :func:`clsbench.tasks.protocol.parsing.parse_answer`, never VLMEvalKit's ``can_infer`` (a failed
  parse there returns ``Z``), writing the usual ``<model>_<data>_clsbench_result`` and ``_acc.csv`` files.
  :func:`register_datasets` inserts them; :func:`clsbench.models.vlmeval.registration.register` adds the models.
* :func:`run_vlmeval` / ``clsbench vlmeval --model NAME --data NAME...`` (re-)exports what is missing or
  stale, registers, and runs VLMEvalKit's own ``run.py`` in this process (``PRED_FORMAT=tsv``), so its
  work-dir layout and leaderboard workflow are unchanged.

VLMEvalKit has no plugin hook, so registration mutates its module-level lists in place; it
must happen in every process that builds datasets or models (under ``torchrun``, every rank runs
``clsbench vlmeval``, which registers first).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import json
import math
import os
import runpy
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import ClassVar

from clsbench.tasks.data.images import decoder_changes, lossless_png
from clsbench.tasks.data.loading import data_root, load_rows
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


def tsv_columns(n_options: int, images: str = "inline") -> list[str]:
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
        "image" if images == "inline" else "image_path",
    ]


def tsv_rows(key: str, data_dir: str | os.PathLike | None = None, name_set: str = DEFAULT_NAMES) -> Iterator[dict]:
    """The dataset's questions as VLMEvalKit MCQ rows (the same docs the lmms-eval task builds).

    ``image`` holds the stored image's original bytes, unless the one decoder would change them (16-bit,
    EXIF orientation, CMYK, palette: :func:`clsbench.tasks.data.images.decoder_changes`): then the decoded
    pixels as PNG, and ``decoded`` says why (VLMEvalKit's own models open the file with a plain
    ``convert("RGB")``, which would show a 16-bit image white and a rotated photo sideways).
    :func:`write_tsv` writes the image as base64 or as a file.
    """
    spec = get_dataset(key)
    docs = add_questions(load_rows(key, data_dir), key, name_set=name_set)
    split = getattr(spec.source, "split", "test")
    for doc in docs:
        # Decoded once with the decoder every toolkit uses, so a bad image fails here as it would in lmms-eval
        # and the CLIP baselines; the TSV keeps the original bytes unless the decoder changes them.
        decoded = open_image(doc["image"], dataset=key, sample_key=doc["sample_key"], source_id=doc.get("source_id"))
        data = _image_bytes(doc["image"], key, doc["sample_key"])
        reason = decoder_changes(data)
        yield {
            "index": int(doc["sample_key"]),
            "question": doc["question"],
            **dict(zip(LETTERS, doc["options"])),
            "answer": doc["answer"],
            "category": spec.group or "extra",
            "split": split,
            "dataset": key,
            "sample_key": doc["sample_key"],
            "label": doc["label"],
            "image": lossless_png(decoded) if reason else data,
            "decoded": reason,
        }


# VLMEvalKit replaces a TSV over 1 GiB by a "_local.tsv" of JPEG re-encodes (max pixel difference 44). clsbench never
# lets it: big datasets are exported with the original image files beside the TSV (images="files"), and an inline
# TSV over this size is localized by ClsbenchMCQDataset itself, writing the original bytes (see ``localize_tsv``).
# VLMEvalKit's threshold (file_size(..., "GB") > 1, GB = 2**30); CLSBENCH_VLMEVAL_INLINE_LIMIT lowers it for tests.
INLINE_LIMIT_BYTES = int(os.environ.get("CLSBENCH_VLMEVAL_INLINE_LIMIT", 1 << 30))
IMAGE_MODES = ("auto", "inline", "files")
SIDECAR_FORMAT = "clsbench-vlmeval-tsv-v1"
IMAGES_STAMP = ".clsbench_tsv.json"  # in $LMUData/images/<name>/: which TSV the images there belong to


def sidecar_path(tsv: Path) -> Path:
    """``<name>.clsbench.json`` beside the TSV: where it came from (data root, class names) and its digest."""
    return tsv.with_name(tsv.stem + ".clsbench.json")


def read_sidecar(tsv: Path) -> dict | None:
    try:
        content = json.loads(sidecar_path(tsv).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and content.get("format") == SIDECAR_FORMAT else None


def _describes(sidecar: dict, stat: os.stat_result) -> bool:
    """Whether the sidecar still describes the file (same size and mtime as when clsbench wrote it)."""
    return (sidecar.get("bytes"), sidecar.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns)


def tsv_identity(tsv: Path) -> str:
    """The TSV's identity: the sha256 recorded at export while the sidecar matches the file, else size and mtime."""
    stat = tsv.stat()
    sidecar = read_sidecar(tsv)
    if sidecar and _describes(sidecar, stat):
        return f"sha256:{sidecar['sha256']}"
    return f"stat:{stat.st_size}:{stat.st_mtime_ns}"


def lmu_data_root(explicit: str | os.PathLike | None = None) -> Path:
    """VLMEvalKit's data folder: ``explicit``, else ``$LMUData``, else ``~/LMUData`` (VLMEvalKit's own default)."""
    return Path(explicit or os.environ.get("LMUData") or Path.home() / "LMUData").expanduser().resolve()


def images_folder(lmu_data: Path, name: str) -> Path:
    """Where VLMEvalKit keeps a dataset's image files (``img_root_map`` is the identity for our names)."""
    return Path(lmu_data) / "images" / name


def _image_suffix(data: bytes) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return "." + {"JPEG": "jpg", "MPO": "jpg"}.get(image.format or "", (image.format or "bin").lower())


def image_file_stem(index, where: str, folder: Path) -> str:
    """``index`` as a file name in ``folder``, refused (naming ``where``, the row) when it is not a plain name.

    A table's index becomes a file name on export and in VLMEvalKit's image folder; a crafted one
    (``../../../pwn``, an absolute path, a path with a folder) would write outside it.
    """
    stem = str(index)
    if not stem or stem in (".", "..") or "/" in stem or "\\" in stem or "\0" in stem or os.path.isabs(stem):
        raise ValueError(
            f"{where}: index {stem!r} is not a plain file name; refusing to write its image outside {folder}"
        )
    return stem


def _write_image(folder: Path, index, data: bytes, where: str = "a row") -> str:
    """Write one image's bytes as ``<index>.<format>`` in ``folder``; returns the file name.

    The index must be a plain file name (:func:`image_file_stem`); anything else is refused, naming ``where``.
    """
    name = f"{image_file_stem(index, where, folder)}{_image_suffix(data)}"
    (folder / name).write_bytes(data)
    return name


def _write_stamp(folder: Path, **content: str) -> None:
    """Record in the image folder which TSV its images belong to (see :func:`prepare_images`)."""
    (folder / IMAGES_STAMP).write_text(json.dumps(content) + "\n", "utf-8")


def _clear_images(folder: Path) -> int:
    """Remove a dataset's image files (decoded or exported) and its stamp; returns how many went."""
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def write_tsv(
    key: str,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    name_set: str = DEFAULT_NAMES,
    images: str = "auto",
) -> Path:
    """Write ``<out_dir>/<VLMEvalKit name>.tsv``, streaming (ImageNet's is several GB), and its sidecar.

    An export that changes the TSV removes the images VLMEvalKit decoded from the earlier one
    (``<out_dir>/images/<name>/``), so no question is ever asked about a stale image.

    Args:
        key: the registry key.
        out_dir: the TSV folder (VLMEvalKit's ``$LMUData``).
        data_dir: the data root.
        name_set: the class names shown (``paper``, or ``openai`` for ImageNet).
        images: ``inline`` (base64 in the TSV, self-contained), ``files`` (the original image files in
            ``<out_dir>/images/<name>/``, an ``image_path`` column in the TSV), or ``auto``: files when the
            inline TSV would pass VLMEvalKit's 1 GiB threshold (estimated from the first rows).

    Returns:
        The TSV's path (written to a partial file first, so a killed export leaves no half TSV).
    """
    if images not in IMAGE_MODES:
        raise ValueError(f"images must be one of {IMAGE_MODES}, got {images!r}")
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    spec = get_dataset(key)
    name = spec.vlmeval_name_for(name_set)
    target = out / f"{name}.tsv"
    partial = target.with_name(f".{target.name}.partial")
    rows = tsv_rows(key, data_dir, name_set)
    head = list(itertools.islice(rows, 64))
    if not head:
        raise SampleError(f"{key}: the split has no rows")
    if images == "auto":
        mean = sum(len(row["image"]) for row in head) / len(head) * 4 / 3  # base64
        images = "files" if mean * spec.expected_size > 0.9 * INLINE_LIMIT_BYTES else "inline"
    n_options = sum(letter in head[0] for letter in LETTERS)
    folder = images_folder(out, name)
    previous = read_sidecar(target) if target.is_file() else None
    if images == "files":
        _clear_images(folder)  # the files are this export's, none from an earlier one
        folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    count = 0
    decoded: dict[str, str] = {}  # sample key -> why its decoded pixels (PNG) were written, not its bytes
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(
                _Hashing(handle, digest),
                fieldnames=tsv_columns(n_options, images),
                delimiter="\t",
                lineterminator="\n",
            )
            writer.writeheader()
            for row in itertools.chain(head, rows):
                data = row.pop("image")
                reason = row.pop("decoded")
                if reason:
                    decoded[row["sample_key"]] = reason
                if images == "files":  # the original bytes (or decoded PNG): the pixels lmms-eval decodes
                    row["image_path"] = _write_image(folder, row["index"], data)
                else:
                    row["image"] = base64.b64encode(data).decode("ascii")
                writer.writerow(row)
                count += 1
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    sidecar = {
        "format": SIDECAR_FORMAT,
        "name": name,
        "dataset": key,
        "class_names": name_set,
        "data_root": str(data_root(data_dir)),
        "rows": count,
        "images": images,
        # Images the one decoder changes (16-bit, EXIF orientation, CMYK, palette) are written as its decoded
        # pixels in PNG, not as their original bytes, so every model sees the pixels lmms-eval and CLIP see.
        "decoded_images": {"format": "PNG", "count": len(decoded), "samples": decoded},
        "sha256": digest.hexdigest(),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    sidecar_path(target).write_text(json.dumps(sidecar, indent=1) + "\n", "utf-8")
    if images == "inline" and (previous or {}).get("sha256") != sidecar["sha256"]:
        _clear_images(folder)  # images VLMEvalKit decoded from an earlier TSV are stale now
    if folder.is_dir():
        _write_stamp(folder, tsv=f"sha256:{sidecar['sha256']}")
    return target


class _Hashing:
    """A text handle that also feeds what it writes to a digest (the TSV's sha256 without a second read)."""

    def __init__(self, handle, digest) -> None:
        self.handle, self.digest = handle, digest

    def write(self, text: str) -> int:
        self.digest.update(text.encode("utf-8"))
        return self.handle.write(text)


def export_is_current(tsv: Path, data_dir: str | os.PathLike | None, name_set: str) -> str | None:
    """None when ``tsv`` was exported from ``data_dir``'s data with ``name_set``'s names; else why it is not."""
    sidecar = read_sidecar(tsv)
    if sidecar is None:
        return f"{tsv} has no clsbench sidecar ({sidecar_path(tsv).name}), so its source is unknown"
    wanted = str(data_root(data_dir))
    if sidecar.get("data_root") != wanted:
        return f"{tsv} was exported from {sidecar.get('data_root')}, but the data root is {wanted}"
    if sidecar.get("class_names") != name_set:
        return f"{tsv} shows {sidecar.get('class_names')} class names, not {name_set}"
    if not _describes(sidecar, tsv.stat()):
        return f"{tsv} changed after clsbench exported it"
    return None


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


def row_meta(name: str, lmu_data: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{index: {dataset, sample_key, label, answer}}`` of ``$LMUData/<name>.tsv``, for decision logs (not answering).

    Streams the TSV once per version of the file (keyed by size and mtime, so a call per sample costs one
    ``stat``). Empty for a TSV that is not ours.
    """
    tsv = lmu_data_root(lmu_data) / f"{name}.tsv"
    if name not in VLMEVAL_DATASETS or not tsv.is_file():
        return {}
    stat = tsv.stat()
    return _row_meta(tsv, stat.st_size, stat.st_mtime_ns)


@cache
def _row_meta(tsv: Path, size: int, mtime_ns: int) -> dict[str, dict]:
    csv.field_size_limit(sys.maxsize)
    with tsv.open(encoding="utf-8", newline="") as handle:
        return {
            row["index"]: {
                "dataset": row["dataset"],
                "sample_key": row["sample_key"],
                "label": int(row["label"]),
                "answer": row["answer"],
            }
            for row in csv.DictReader(handle, delimiter="\t")
        }


def _stamp(folder: Path) -> dict:
    try:
        return json.loads((folder / IMAGES_STAMP).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def prepare_images(tsv: Path, folder: Path) -> Path:
    """Make ``folder`` (VLMEvalKit's image folder for the dataset) hold only this TSV's images; returns the TSV to read.

    * The folder's stamp names the TSV its images came from. After an export that changed the TSV, decoded
      images of an inline TSV are removed (VLMEvalKit would reuse them by file name); the image files of a
      ``files`` export that belong to another TSV are refused, naming the command that rewrites them.
    * An inline TSV over VLMEvalKit's 1 GiB threshold is localized here, losslessly: each image's original
      bytes go to a file, and a ``_clsbench_local.tsv`` with an ``image_path`` column is read instead.
    """
    identity = tsv_identity(tsv)
    with tsv.open(encoding="utf-8", newline="") as handle:
        columns = handle.readline().rstrip("\n").split("\t")
    inline = "image" in columns
    stamp = _stamp(folder)
    if stamp.get("tsv") != identity:
        if not inline and stamp:
            raise ValueError(
                f"{tsv.name}: the image files in {folder} belong to another export (stamp {stamp.get('tsv')}, TSV "
                f"{identity}); rewrite both with `clsbench export-vlmeval ... --output-dir {tsv.parent}`"
            )
        if inline:
            removed = _clear_images(folder)
            if removed:
                print(f"clsbench: {tsv.name} changed: removed {removed} stale images from {folder}", file=sys.stderr)
            folder.mkdir(parents=True, exist_ok=True)
            _write_stamp(folder, tsv=identity)
    if inline and tsv.stat().st_size > INLINE_LIMIT_BYTES:
        return localize_tsv(tsv, folder, identity)
    return tsv


def localize_tsv(tsv: Path, folder: Path, identity: str | None = None) -> Path:
    """A big inline TSV as an ``image_path`` TSV plus the original image files (what VLMEvalKit's LOCALIZE does,
    without re-encoding); streaming, so memory stays flat. Reused while the TSV is unchanged."""
    identity = identity or tsv_identity(tsv)
    local = tsv.with_name(f"{tsv.stem}_clsbench_local.tsv")
    if local.is_file() and _stamp(folder).get("localized") == identity:
        return local
    csv.field_size_limit(sys.maxsize)
    folder.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(f".{local.name}.partial")
    try:
        with tsv.open(encoding="utf-8", newline="") as source, partial.open("w", encoding="utf-8", newline="") as out:
            reader = csv.DictReader(source, delimiter="\t")
            fields = ["image_path" if field == "image" else field for field in reader.fieldnames or []]
            writer = csv.DictWriter(out, fieldnames=fields, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            for number, row in enumerate(reader, start=2):  # line 1 is the header
                where = f"{tsv.name} line {number}"
                image_file_stem(row.get("index"), where, folder)  # refused before its image is decoded
                row["image_path"] = _write_image(folder, row["index"], base64.b64decode(row.pop("image")), where)
                writer.writerow(row)
        partial.replace(local)
    finally:
        partial.unlink(missing_ok=True)
    _write_stamp(folder, tsv=identity, localized=identity)
    return local


@cache
def dataset_classes() -> dict[str, type]:
    """One ``ImageMCQDataset`` subclass per dataset, keyed by VLMEvalKit name (needs ``vlmeval``)."""
    from vlmeval.dataset.image_mcq import ImageMCQDataset
    from vlmeval.dataset.utils.multiple_choice import report_acc
    from vlmeval.smp import LMUDataRoot, dump, get_intermediate_file_path, load, read_ok, toliststr

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
            # Never VLMEvalKit's prepare_tsv: over 1 GiB it swaps our images for JPEG re-encodes.
            return load(str(prepare_images(path, Path(self.img_root))))

        def dump_image(self, line):
            if "image" not in line or not isinstance(line["image"], str):
                return super().dump_image(line)
            where = f"{self.dataset_name} row with index {line['index']!r}"
            stem = image_file_stem(line["index"], where, self.img_root)
            target = Path(self.img_root) / f"{stem}.png"
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
            if not self.meta_only and isinstance(line.get("image"), str) and line["image"]:
                paths = self.dump_image(line)
            else:  # an image_path row: the original file, beside the TSV or where the path says
                paths = [p if os.path.isabs(p) else str(Path(self.img_root) / p) for p in toliststr(line["image_path"])]
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
    root = lmu_data_root(lmu_data)
    root.mkdir(parents=True, exist_ok=True)
    os.environ["LMUData"] = str(root)
    # Predictions as TSV, not .xlsx: openpyxl escapes control characters ("C\x0b" -> "C_x000B_"), which changes
    # what the parser reads; a TSV keeps every reply exactly.
    os.environ.setdefault("PRED_FORMAT", "tsv")
    for name in data:
        key, name_set = VLMEVAL_DATASETS[name]
        tsv = root / f"{name}.tsv"
        stale = export_is_current(tsv, data_dir, name_set) if tsv.is_file() else f"no {tsv}"
        if stale:
            print(f"clsbench vlmeval: exporting {name}.tsv to {root} ({stale})", file=sys.stderr)
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


def print_table(work_dir: str, models: Sequence[str], names: Sequence[str], newer_than: float = 0.0) -> None:
    """The paper's table (accuracy %, group means when complete) from VLMEvalKit's newest ``_acc`` files
    written after ``newer_than``: a score from an earlier run never stands in for this one's."""
    import csv as csv_module

    from clsbench.tasks.report.lmms_results import markdown_table, table_row

    rows = {}
    for model in models:
        scores = {}
        for name in names:
            files = result_files(work_dir, model, name, newer_than)
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
