"""Where a dataset's rows come from: a prepared local copy, or the pinned Hub split.

A prepared copy is one standard schema for all ten datasets, written by ``clsbench prepare``:

    DIR/clsbench.json                      dataset key, class names, row count, provenance
    DIR/data/test-00000-of-0000N.parquet   columns image {bytes, path}, label int64, source_id string

Local copies live in a data root, one folder per dataset key: ``--data-dir``, else ``$CLSBENCH_DATA``,
else ``~/.cache/clsbench/data``. A prepared copy wins over the Hub, which is also how offline runs
and the demo fixtures work.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from clsbench.tasks.protocol.registry import DEFAULT_NAMES, DatasetSpec, HubSource, as_spec
from clsbench.tasks.runtime.errors import ClsbenchError

META_FILE = "clsbench.json"
SCHEMA_VERSION = 1
COLUMNS = ("image", "label", "source_id")
# lmms-eval must load something before our hooks run: tasks without data read this one-row file,
# whose only column tells process_docs to raise the "run clsbench prepare" message.
MISSING_DATA_SENTINEL = "_missing_local_data.parquet"
MISSING_DATA_COLUMN = "clsbench_missing_local_data"


class DataError(ClsbenchError, RuntimeError):
    """A dataset is missing, unreachable or malformed; the message says what to do."""


class PartialSplitWarning(UserWarning):
    """A local copy is not the paper's size (a fixture, a subset, a partial prepare): its numbers do not compare."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding prepared datasets, one subfolder per dataset key."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve()
    return Path(os.environ.get("CLSBENCH_DATA") or "~/.cache/clsbench/data").expanduser().resolve()


@dataclass(frozen=True)
class PreparedData:
    """A prepared local copy of one dataset."""

    root: Path
    meta: dict

    @property
    def key(self) -> str:
        return self.meta["dataset"]

    @property
    def classnames(self) -> tuple[str, ...]:
        return tuple(self.meta["classnames"])

    @property
    def parquet_glob(self) -> str:
        return str(self.root / "data" / "test-*.parquet")


def find_prepared(dataset: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> PreparedData | None:
    """The prepared copy of ``dataset`` (a spec or its key) under the data root, if there is one, checked before
    anyone reads it.

    Every consumer (lmms-eval task folders, the CLIP baselines, the VLMEvalKit export) finds copies
    here, so a malformed copy fails the same way everywhere, with the dataset, the file and the cause:
    unreadable ``clsbench.json``, missing or empty parquet shards, missing columns, non-integer
    labels, a row count other than recorded, or class lists that disagree between ``clsbench.json``,
    the parquet files' label feature and the registry.
    """
    spec = as_spec(dataset)
    key = spec.key
    folder = data_root(data_dir) / key
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        return None
    redo = f"re-run `clsbench prepare --datasets {key}`"
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"{key}: {meta_path} is not readable JSON ({error}); {redo}") from error
    if not isinstance(meta, dict) or not all(
        field in meta for field in ("dataset", "schema_version", "rows", "classnames")
    ):
        raise DataError(f"{key}: {meta_path} lacks dataset, schema_version, rows or classnames; {redo}")
    if meta.get("dataset") != key:
        raise DataError(f"{meta_path} describes dataset {meta.get('dataset')!r}, not {key!r}")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise DataError(f"{meta_path} has schema version {meta.get('schema_version')}; {redo}")
    prepared = PreparedData(folder, meta)
    _check_prepared_files(prepared, spec, redo)
    return prepared


def copy_fingerprint(dataset: str | DatasetSpec, data_dir: str | os.PathLike | None = None) -> str:
    """What identifies the rows :func:`load_rows` reads for ``dataset`` (a spec or its key): a digest of the
    prepared copy's content, else the pinned Hub split.

    For a prepared copy: the sha256 over ``clsbench.json`` and every parquet shard, each hashed by
    :func:`clsbench.tasks.runtime.stores.file_sha256` (read once per version of the file, then cached by its
    stat), so a copy rebuilt in place (fewer rows, other images) gets a new one. For the Hub: its repo, pinned
    revision and split.
    """
    import glob
    import hashlib

    from clsbench.tasks.runtime.stores import file_sha256

    spec = as_spec(dataset)
    prepared = find_prepared(spec, data_dir)
    if prepared is not None:
        digest = hashlib.sha256()
        for path in [prepared.root / META_FILE, *sorted(Path(p) for p in glob.glob(prepared.parquet_glob))]:
            digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
        return f"copy:sha256:{digest.hexdigest()}"
    if isinstance(spec.source, HubSource):
        return f"hub:{spec.source.repo_id}@{spec.source.revision}[{spec.source.split}]"
    raise DataError(missing_data_message(spec, data_dir))


def _check_prepared_files(prepared: PreparedData, spec: DatasetSpec, redo: str) -> None:
    import pyarrow.parquet as pq

    key = prepared.key
    shards = sorted((prepared.root / "data").glob("test-*.parquet"))
    if not shards:
        raise DataError(
            f"{key}: {prepared.root / META_FILE} exists but {prepared.parquet_glob} matches no file; {redo}"
        )
    rows = 0
    for shard in shards:
        try:
            parquet = pq.ParquetFile(shard)
        except Exception as error:  # pyarrow raises several types for damaged files
            raise DataError(f"{key}: {shard} is not a readable parquet file ({error}); {redo}") from error
        schema = parquet.schema_arrow
        missing = [column for column in COLUMNS if column not in schema.names]
        if missing:
            raise DataError(f"{key}: {shard} lacks column(s) {missing} (has {schema.names}); {redo}")
        label_type = schema.field("label").type
        if not str(label_type).startswith(("int", "uint")):
            raise DataError(f"{key}: {shard} stores labels as {label_type}, not integers; {redo}")
        names = _parquet_label_names(schema)
        if names is not None and list(names) != list(prepared.classnames):
            first = next(
                (i for i, (a, b) in enumerate(zip(names, prepared.classnames)) if a != b),
                min(len(names), len(prepared.classnames)),
            )
            raise DataError(
                f"{key}: {shard} and {prepared.root / META_FILE} disagree on the class list ({len(names)} vs "
                f"{len(prepared.classnames)} names; first difference at label {first}); {redo}"
            )
        rows += parquet.metadata.num_rows
    if rows == 0:
        raise DataError(f"{key}: the prepared copy at {prepared.root} has no rows; {redo}")
    if rows != prepared.meta["rows"]:
        raise DataError(
            f"{key}: the parquet files at {prepared.root} hold {rows} rows, "
            f"{META_FILE} says {prepared.meta['rows']}; {redo}"
        )
    if spec.classnames is not None and len(prepared.classnames) != len(spec.classnames):
        raise DataError(
            f"{key}: the prepared copy at {prepared.root} has {len(prepared.classnames)} classes, the registry "
            f"{len(spec.classnames)}; {redo}"
        )
    check_label_names(spec, prepared.classnames, f"{prepared.root / META_FILE}")


def _parquet_label_names(schema) -> list[str] | None:
    """The ClassLabel names ``datasets`` stores in a parquet file's schema metadata, if any."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        feature = json.loads(raw)["info"]["features"]["label"]
    except (ValueError, KeyError, TypeError):
        return None
    return feature.get("names") if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" else None


def missing_data_message(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> str:
    root = data_root(data_dir)
    return (
        f"{spec.key}: no prepared data at {root / spec.key}. Build it with\n"
        f"  clsbench prepare --datasets {spec.key} --source RAW_DIR --data-dir {root}\n"
        f"where RAW_DIR is {spec.source.raw_form if spec.is_local else 'a local snapshot of ' + spec.source.repo_id}"
        + (f"; get it from {spec.source.obtain}." if spec.is_local else ".")
    )


def hub_offline_message(spec: DatasetSpec, error: BaseException, data_dir: str | os.PathLike | None = None) -> str:
    """The Hub could not serve the split: the ``hf download`` line and the ``prepare`` line (into ``data_dir`` when
    one was given: no prepared copy was found there, so the Hub was tried)."""
    source = spec.source
    assert isinstance(source, HubSource)
    gated = " (gated: accept its terms on the Hub, then `hf auth login`)" if spec.key == "imagenet" else ""
    into = f" --data-dir {data_root(data_dir)}" if data_dir is not None else ""
    searched = f"; no prepared copy at {data_root(data_dir) / spec.key} either" if data_dir is not None else ""
    return (
        f"{spec.key}: could not load {source.repo_id}@{source.revision[:7]} "
        f"from the Hugging Face Hub{gated} ({error}){searched}.\n"
        "To run offline, on a machine with access download just this split's files:\n"
        f"  {source.download_command()}\n"
        f"then here `clsbench prepare --datasets {spec.key} --source SNAPSHOT{into}`, "
        "or set HF_HUB_OFFLINE=1 with a filled HF cache."
    )


def missing_root_message(spec: DatasetSpec, data_dir: str | os.PathLike) -> str:
    """An explicitly given data root that does not exist: a typo, most likely; named before anything falls back
    to the Hub (or steers the user into preparing data in the mistyped folder)."""
    root = data_root(data_dir)
    if isinstance(spec.source, HubSource):
        fill = (
            f"  {spec.source.download_command()}\n  clsbench prepare --datasets {spec.key} --source SNAPSHOT "
            f"--data-dir {root}\nor leave out --data-dir to read the pinned Hub split"
        )
    else:
        fill = "  " + missing_data_message(spec, root).split("\n", 1)[1].strip().replace("\n", "\n  ")
    return f"--data-dir {root} does not exist (mistyped?). To fill it:\n{fill}"


def is_network_error(error: BaseException) -> bool:
    """Whether ``error`` means the Hub could not be reached or refused the request (DNS, proxy, timeout, HTTP).

    The Hub clients raise their HTTP library's own types (``httpx``/``httpx2`` transport errors, ``requests``'
    errors, ``huggingface_hub``'s HTTP errors), which are not ``OSError``: checked by type here, imported only
    once something failed, so every command turns them into the one message with the ``hf download`` line.
    """
    import importlib

    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "RequestException"),
        ("huggingface_hub.errors", "HfHubHTTPError"),
        ("huggingface_hub.errors", "OfflineModeIsEnabled"),
    ):
        try:
            kind = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if isinstance(error, kind):
            return True
    return False


def hub_load_kwargs(source: HubSource) -> dict:
    """Arguments for ``datasets.load_dataset`` that read exactly the pinned split's files (and download no other)."""
    return {"path": source.builder, "data_files": {source.split: source.data_url}}


def load_rows(dataset: str | DatasetSpec, data_dir: str | os.PathLike | None = None):
    """The dataset's evaluation split as a ``datasets.Dataset`` with columns image, label (and source_id).

    Reads the prepared copy when there is one, else the pinned Hub split; raises DataError with
    the command to run when neither is reachable.

    Args:
        dataset: the spec, or its registry key (looked up once).
        data_dir: the data root (default ``$CLSBENCH_DATA``, else ``~/.cache/clsbench/data``).

    Returns:
        The split, its label names checked against the recorded Hub labels.
    """
    import datasets

    spec = as_spec(dataset)
    if data_dir is not None and not data_root(data_dir).is_dir():
        raise DataError(missing_root_message(spec, data_dir))
    prepared = find_prepared(spec, data_dir)
    if prepared is not None:
        rows = datasets.load_dataset("parquet", data_files={"test": prepared.parquet_glob}, split="test")
        # find_prepared already checked the copy's label names against the parquet files and the registry
        check_row_count(spec, rows.num_rows, f"the prepared copy {prepared.root}", strict=False)
        return rows
    if spec.is_local:
        raise DataError(missing_data_message(spec, data_dir))
    source = spec.source
    try:
        rows = datasets.load_dataset(**hub_load_kwargs(source), split=source.split)
    except (ConnectionError, OSError, ValueError) as error:  # datasets raises all three when offline
        raise DataError(hub_offline_message(spec, error, data_dir)) from error
    except Exception as error:  # the HTTP library's own types (httpx ConnectError, ...): the same message
        if not is_network_error(error):
            raise
        raise DataError(hub_offline_message(spec, error, data_dir)) from error
    rows = to_standard_columns(rows, source)
    check_label_names(spec, getattr(rows.features["label"], "names", None), f"{source.repo_id}@{source.revision[:7]}")
    check_row_count(spec, rows.num_rows, f"{source.repo_id}@{source.revision[:7]} [{source.split}]", strict=True)
    return rows


def _comparable(name: str) -> str:
    """Case, ``_``/``-`` and spacing do not make two label names differ."""
    return " ".join(name.replace("_", " ").replace("-", " ").split()).casefold()


def check_label_names(dataset: str | DatasetSpec, feature_names, where: str) -> None:
    """Fail when a split's ClassLabel names do not match, index for index, the names clsbench records for it.

    A split's names are accepted when each equals (case, ``_``/``-`` and spacing aside) either the Hub's
    label name recorded at the pinned revision (``data/hub_labels/<key>.json``) or one of the
    dataset's class-name sets (a prepared copy stores the display names). The first index that
    matches neither is named with both names: a swapped label order never scores silently.
    """
    if feature_names is None:
        return
    spec = as_spec(dataset)
    key = spec.key
    hub = spec.hub_labels or {}
    accepted: list[list[str]] = [list(hub["names"])] if hub.get("names") else []
    accepted += [list(names) for names in (spec.names(name_set) for name_set in spec.name_sets) if names is not None]
    if not accepted:
        return  # gldv2: the prepared copy's own names are the only names there are
    expected = accepted[0]
    if len(feature_names) != len(expected):
        raise DataError(f"{key}: {where} has {len(feature_names)} label names, clsbench expects {len(expected)}")
    seen = evidenced_indices(hub) if hub.get("names") else set()
    for index, name in enumerate(feature_names):
        if not any(_comparable(name) == _comparable(names[index]) for names in accepted):
            unverified = (
                f" The record was never checked against the Hub at index {index} ({hub.get('unverified_note', '')}): "
                "if the split is the pinned one, the record is what is wrong; please report it."
                if hub.get("names") and index not in seen
                else ""
            )
            raise DataError(
                f"{key}: label {index} of {where} is named {name!r}, but clsbench expects {expected[index]!r} for "
                f"label {index} (Hub label order recorded in data/hub_labels/{key}.json). The split's label order "
                "differs from the class list; refusing to score against swapped names." + unverified
            )


def parse_indices(text: str) -> set[int]:
    """``"0-43,195"`` -> {0, ..., 43, 195} (the index ranges of a Hub label record's evidence)."""
    indices: set[int] = set()
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        first, _, last = part.partition("-")
        indices.update(range(int(first), int(last or first) + 1))
    return indices


def evidenced_indices(record: dict) -> set[int]:
    """Label indices whose recorded Hub name an evidence entry shows (the Hub itself, or the list it is built from)."""
    return set().union(*(parse_indices(entry["indices"]) for entry in record.get("evidence") or []))


def check_row_count(dataset: str | DatasetSpec, rows: int, where: str, *, strict: bool) -> None:
    """A split whose size is not the registry's says so: an error for a pinned Hub split, a warning otherwise."""
    spec = as_spec(dataset)
    expected = spec.expected_size
    if rows == expected:
        return
    message = f"{spec.key}: {where} has {rows:,} rows, the paper's split {expected:,}"
    if strict:
        raise DataError(message + "; the pinned revision should never change size (corrupt download?)")
    import warnings

    warnings.warn(
        message + " (a partial or fixture copy: results are not comparable with the paper's)",
        PartialSplitWarning,
        stacklevel=2,
    )


IMAGE_KEYS = ("image", "webp", "jpg", "jpeg", "png")  # WebDataset copies name the image column by its extension
LABEL_KEYS = ("label", "cls")


class HubLayoutError(DataError):
    """A Hub split's files or columns are not where clsbench looks: the message says what was found."""


def _describe_columns(rows) -> str:
    return ", ".join(f"{name} ({type(feature).__name__})" for name, feature in rows.features.items()) or "no columns"


def discover_columns(rows, source: HubSource) -> tuple[str, str]:
    """The split's image and label columns: the registry's names, or found where the registry leaves them open.

    A column left open (``None``, for a layout read from sibling repositories and never seen at the pin)
    is found by its feature (one ``datasets.Image`` column; one ``ClassLabel`` or integer column named
    ``label``/``cls``). Raises HubLayoutError naming every column found when that is not exactly one.
    """
    import datasets

    where = f"{source.repo_id}@{source.revision[:7]}"
    found = _describe_columns(rows)

    def pick(kind: str, wanted: str | None, candidates: list[str], expected: str) -> str:
        if wanted is not None:
            if wanted not in rows.column_names:
                raise HubLayoutError(f"{where}: no {kind} column {wanted!r}; found {found}")
            return wanted
        if len(candidates) != 1:
            raise HubLayoutError(
                f"{where}: cannot tell the {kind} column ({expected}); found {found}"
                + (f"; candidates {candidates}" if candidates else "")
            )
        return candidates[0]

    features = rows.features
    images = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    if not images:
        images = [name for name in rows.column_names if name.lower() in IMAGE_KEYS]

    def integer(feature) -> bool:
        return isinstance(feature, datasets.ClassLabel) or (
            isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))
        )

    labels = [name for name in rows.column_names if name.lower() in LABEL_KEYS and integer(features[name])]
    if not labels:
        labels = [name for name, feature in features.items() if isinstance(feature, datasets.ClassLabel)]
    image = pick("image", source.image_column, images, f"one image column, e.g. {'/'.join(IMAGE_KEYS)}")
    label = pick("label", source.label_column, labels, f"one integer column named {'/'.join(LABEL_KEYS)}")
    return image, label


def to_standard_columns(rows, source: HubSource):
    """Rename a Hub split's image/label columns (given by the registry or discovered) to ``image``/``label``."""
    image, label = discover_columns(rows, source)
    renames = {old: new for old, new in {image: "image", label: "label"}.items() if old != new}
    return rows.rename_columns(renames) if renames else rows


def classnames_for(
    dataset: str | DatasetSpec, data_dir: str | os.PathLike | None = None, name_set: str = DEFAULT_NAMES
) -> tuple[str, ...]:
    """Class names in label order: package data, or the prepared copy's list where the package has none."""
    spec = as_spec(dataset)
    names = spec.names(name_set)
    if names is not None:
        return names
    prepared = find_prepared(spec, data_dir)
    if prepared is None:
        raise DataError(missing_data_message(spec, data_dir))
    return prepared.classnames


def write_prepared(
    out_dir: str | os.PathLike,
    key: str,
    records,
    classnames: list[str] | tuple[str, ...],
    provenance: dict,
    *,
    skip_corrupt: bool = False,
    shard_bytes: int = 500 << 20,
    total: int | None = None,
    progress: bool = True,
) -> PreparedData:
    """Write ``(source_id, image_bytes, label)`` records as a prepared copy in the standard schema.

    Every image is fully decoded (:func:`clsbench.tasks.data.images.decode_image`) and every label
    range-checked here, so a prepared copy
    never fails mid-evaluation; a bad record raises an error naming it, or is skipped and listed in
    ``clsbench.json`` with ``skip_corrupt``. Shards are written as they fill, with a progress bar (``progress``;
    off, the datasets library's own parquet bar is silenced too).
    """
    import shutil

    import datasets
    from tqdm import tqdm

    from clsbench.tasks.data.images import ImageDecodeError, decode_image

    final = Path(out_dir)
    # Build beside the target and swap it in at the end: a failed run leaves the old copy intact.
    out = final.with_name(f".{final.name}.partial")
    shutil.rmtree(out, ignore_errors=True)
    (out / "data").mkdir(parents=True)
    # ClassLabel keeps the names inside the parquet (gldv2's only copy of them); it refuses repeated
    # names, so ImageNet's list (two "missile" classes) is stored as plain ints, named by the registry.
    unique_names = len(set(classnames)) == len(classnames)
    label_feature = datasets.ClassLabel(names=list(classnames)) if unique_names else datasets.Value("int64")
    features = datasets.Features(
        {"image": datasets.Image(), "label": label_feature, "source_id": datasets.Value("string")}
    )
    shard: dict[str, list] = {"image": [], "label": [], "source_id": []}
    shard_paths: list[Path] = []
    skipped: list[dict] = []
    rows = 0
    pending_bytes = 0

    def flush() -> None:
        nonlocal shard, pending_bytes
        if not shard["label"]:
            return
        path = out / "data" / f"shard-{len(shard_paths):05d}.parquet"
        table = datasets.Dataset.from_dict(shard, features=features)
        if progress:
            table.to_parquet(str(path))
        else:
            was_enabled = datasets.utils.logging.is_progress_bar_enabled()
            datasets.utils.logging.disable_progress_bar()
            try:
                table.to_parquet(str(path))
            finally:
                if was_enabled:
                    datasets.utils.logging.enable_progress_bar()
        shard_paths.append(path)
        shard = {"image": [], "label": [], "source_id": []}
        pending_bytes = 0

    try:
        bar = tqdm(records, total=total, desc=f"prepare {key}", unit="img", disable=not progress)
        for source_id, image_bytes, label in bar:
            problem = None
            if not isinstance(label, int) or not 0 <= label < len(classnames):
                problem = f"label {label!r} is outside the class list (0..{len(classnames) - 1})"
            else:
                try:
                    decode_image(image_bytes)  # the full decode every consumer does, not just a header check
                except ImageDecodeError as error:
                    problem = f"corrupt or unreadable image ({error})"
            if problem:
                if not skip_corrupt:
                    raise DataError(f"{key} sample {source_id}: {problem} (use --skip-corrupt to leave it out)")
                skipped.append({"source_id": source_id, "problem": problem})
                continue
            shard["image"].append({"bytes": image_bytes, "path": source_id})
            shard["label"].append(label)
            shard["source_id"].append(source_id)
            rows += 1
            pending_bytes += len(image_bytes)
            if pending_bytes >= shard_bytes:
                flush()
        flush()
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    if rows == 0:
        shutil.rmtree(out, ignore_errors=True)
        raise DataError(f"{key}: no usable images found")
    for index, path in enumerate(shard_paths):
        path.rename(out / "data" / f"test-{index:05d}-of-{len(shard_paths):05d}.parquet")
    meta = {
        "dataset": key,
        "schema_version": SCHEMA_VERSION,
        "rows": rows,
        "classnames": list(classnames),
        "skipped": skipped,
        "provenance": provenance,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", "utf-8")
    shutil.rmtree(final, ignore_errors=True)
    out.rename(final)
    return PreparedData(final, meta)


def hub_status(source: HubSource, timeout: float) -> str:
    """Whether the pinned revision answers on the Hub (a metadata call, no download)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return "hub (offline mode)"
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    try:
        HfApi().dataset_info(source.repo_id, revision=source.revision, timeout=timeout)
        return "hub: reachable"
    except GatedRepoError:
        return "hub: gated, log in and accept the terms"
    except HfHubHTTPError as error:
        return f"hub: HTTP {getattr(error.response, 'status_code', '?')}"
    except Exception as error:  # DNS, proxy, timeout: all mean "not reachable from here"
        return f"hub: unreachable ({type(error).__name__})"
