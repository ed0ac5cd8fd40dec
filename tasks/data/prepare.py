"""``clsbench prepare``: build a dataset's prepared copy (see :mod:`clsbench.tasks.data.loading`) from raw files.

There is one builder per raw form. Each builder lists every image it will use and checks the
mapping to class names *before* anything is written. Missing files or unknown classes therefore
fail fast, with a message that names them. The builder then reads the image bytes lazily, in a
fixed order, so two runs on the same raw files give the same rows. :func:`data.write_prepared`
validates each image, writes the shards and records the provenance that the builder returns.

Source ids (the ``source_id`` column) are what a user needs to find an image again. They are
``<class folder>/<file>`` for Caltech-101 and ObjectNet, the test image id for GLDv2 and the logo
set, and the row index for Hub snapshots, so that row i of the prepared copy is row i of the
pinned split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote

from clsbench.tasks.data.loading import (
    DataError,
    HubLayoutError,
    PreparedData,
    check_label_names,
    data_root,
    to_standard_columns,
    write_prepared,
)
from clsbench.tasks.protocol.registry import DatasetSpec, HubSource, LocalSource, get_dataset

Record = tuple[str, bytes, int]
CALTECH_BACKGROUND = "BACKGROUND_Google"
CALTECH_TRAIN_FRACTION = 0.5
CALTECH_SPLIT_RULE = (
    "per class folder (BACKGROUND_Google skipped): n_train = round(0.5 * n) (Python round, half to even); "
    "files ordered by sha256('clsbench-caltech101|<folder>/<file>') hex digest ascending, <folder> being the "
    "canonical folder name from caltech101.json (so lowercase copies split the same way); the last "
    "n - n_train are the test split; rows ordered by label, then file name"
)


@dataclass(frozen=True)
class RawData:
    """What a builder found: the records (read lazily), their count, the class list and how it was made."""

    records: Iterable[Record]
    total: int
    classnames: tuple[str, ...]
    provenance: dict


def prepare(
    key: str,
    source: str | os.PathLike,
    out_root: str | os.PathLike | None = None,
    *,
    skip_corrupt: bool = False,
    subset: str | os.PathLike | None = None,
) -> PreparedData:
    """Build the prepared copy of dataset `key` from raw files at `source` into data_root(out_root)/key.

    ``source`` takes the dataset's raw form (``spec.source.raw_form``) for local datasets, or a
    local snapshot of the pinned Hub repo for the others. ``subset`` is a file of GLDv2 test ids.
    """
    spec = get_dataset(key)
    src = Path(source).expanduser()
    if not src.is_dir():
        raise DataError(f"{key}: source {src} is not a folder; expected {_expected_source(spec)}")
    if subset is not None and key != "gldv2":
        raise DataError(f"{key}: --subset applies only to gldv2")
    out_dir = data_root(out_root) / key
    if isinstance(spec.source, HubSource):
        # load_dataset builds a full Arrow copy of the split; keep it beside the output, not in the
        # shared HF cache, and delete it once the rows are written.
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{key}-arrow-", dir=out_dir.parent) as cache_dir:
            return _write(out_dir, spec, _hub_snapshot(spec, src, Path(cache_dir)), skip_corrupt)
    builders: dict[str, Callable[[DatasetSpec, Path], RawData]] = {
        "caltech101": _caltech101,
        "objectnet": _objectnet,
        "gldv2": partial(_gldv2, subset=Path(subset).expanduser() if subset is not None else None),
        "logo": _logo,
    }
    if key not in builders:
        raise DataError(f"{key}: no builder for this local dataset")  # a registry entry without one
    return _write(out_dir, spec, builders[key](spec, src), skip_corrupt)


def _write(out_dir: Path, spec: DatasetSpec, raw: RawData, skip_corrupt: bool) -> PreparedData:
    provenance = {"builder": f"{__name__}:{spec.key}", **raw.provenance}
    return write_prepared(
        out_dir, spec.key, raw.records, raw.classnames, provenance, skip_corrupt=skip_corrupt, total=raw.total
    )


# --- shared helpers ---------------------------------------------------------------------------


def _expected_source(spec: DatasetSpec) -> str:
    if isinstance(spec.source, LocalSource):
        return spec.source.raw_form
    hub = spec.source
    return f"a local snapshot of {hub.repo_id}@{hub.revision[:7]}'s {hub.split} split ({hub.download_command()})"


def _require(spec: DatasetSpec, path: Path, *, folder: bool = False) -> Path:
    """The path, or a DataError saying what the raw form should contain."""
    if not (path.is_dir() if folder else path.is_file()):
        kind = "folder" if folder else "file"
        raise DataError(f"{spec.key}: expected {kind} {path} is missing; the source should be {_expected_source(spec)}")
    return path


def _listing(folder: Path, *, dirs: bool) -> list[Path]:
    """Sub-folders or files of ``folder`` in sorted order, hidden entries (.DS_Store, ...) left out."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir() == dirs)


def _read_files(items: list[tuple[str, Path, int]]) -> Iterator[Record]:
    """Read each file when it is needed; an unreadable one gives empty bytes, reported as corrupt downstream."""
    for source_id, path, label in items:
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        yield source_id, data, label


def _raw(items: list[tuple[str, Path, int]], classnames: tuple[str, ...], source: Path, **provenance) -> RawData:
    return RawData(_read_files(items), len(items), classnames, {"source": str(source.resolve()), **provenance})


def _classnames(spec: DatasetSpec) -> tuple[str, ...]:
    names = spec.classnames
    assert names is not None, f"{spec.key} has no packaged class list"
    return names


# --- local raw forms --------------------------------------------------------------------------


def caltech101_test_files(folder: str, filenames: list[str]) -> set[str]:
    """The test files of one Caltech-101 class under the documented rule (CALTECH_SPLIT_RULE).

    ``folder`` is the canonical folder name (e.g. ``Faces_easy``); public so the rule can be checked.
    """
    n_train = round(CALTECH_TRAIN_FRACTION * len(filenames))
    by_hash = sorted(
        filenames, key=lambda name: hashlib.sha256(f"clsbench-caltech101|{folder}/{name}".encode()).hexdigest()
    )
    return set(by_hash[n_train:])


def _caltech101(spec: DatasetSpec, src: Path) -> RawData:
    """Caltech-101 test split: CoOp's per-class 50% rule, with a hash order standing in for its random shuffle.

    CoOp's split (round(0.5 n) train per class, the rest test; 4,331 test images on the 8,677-image
    set) depends on a shuffle seed and cannot be reproduced image for image, so the test images are
    chosen by a documented hash order instead (see CALTECH_SPLIT_RULE).
    """
    folder_to_classname: dict[str, str] = spec.class_data["folder_to_classname"]
    classnames = _classnames(spec)
    canonical = {folder.lower(): folder for folder in folder_to_classname}
    items: list[tuple[str, Path, int]] = []
    seen: dict[str, str] = {}
    n_images = 0
    for class_dir in _listing(src, dirs=True):
        if class_dir.name.lower() == CALTECH_BACKGROUND.lower():
            continue
        folder = canonical.get(class_dir.name.lower())
        if folder is None:
            raise DataError(
                f"caltech101: class folder {class_dir.name!r} in {src} is not a Caltech-101 category "
                f"(caltech101.json folder_to_classname); expected {_expected_source(spec)}"
            )
        if folder in seen:
            raise DataError(f"caltech101: folders {seen[folder]!r} and {class_dir.name!r} are the same class")
        seen[folder] = class_dir.name
        label = classnames.index(folder_to_classname[folder])
        files = {path.name: path for path in _listing(class_dir, dirs=False)}
        n_images += len(files)
        items += [(f"{folder}/{name}", files[name], label) for name in caltech101_test_files(folder, list(files))]
    if not seen:
        raise DataError(f"caltech101: no class folders in {src}; expected {_expected_source(spec)}")
    items.sort(key=lambda item: (item[2], item[0]))
    return _raw(items, classnames, src, split_rule=CALTECH_SPLIT_RULE, classes_found=len(seen), images_found=n_images)


def _normalise_label(name: str) -> str:
    """ObjectNet label strings differ from the paper list in case and spacing ("Hairdryer" / "Hair dryer")."""
    return "".join(name.split()).casefold()


def _objectnet(spec: DatasetSpec, src: Path) -> RawData:
    """ObjectNet, all 313 classes: folders map to the paper's class names through the official label strings."""
    images = _require(spec, src / "images", folder=True)
    mapping_path = _require(spec, src / "mappings" / "folder_to_objectnet_label.json")
    folder_to_label: dict[str, str] = json.loads(mapping_path.read_text("utf-8"))
    classnames = _classnames(spec)
    by_name = {_normalise_label(name): index for index, name in enumerate(classnames)}
    items: list[tuple[str, Path, int]] = []
    for class_dir in _listing(images, dirs=True):
        label_string = folder_to_label.get(class_dir.name)
        if label_string is None:
            raise DataError(f"objectnet: image folder {class_dir.name!r} is not in {mapping_path}")
        label = by_name.get(_normalise_label(label_string))
        if label is None:
            raise DataError(
                f"objectnet: folder {class_dir.name!r} has label {label_string!r}, which matches no class name in "
                "objectnet_313.json (compared ignoring case and spaces)"
            )
        items += [(f"{class_dir.name}/{path.name}", path, label) for path in _listing(class_dir, dirs=False)]
    return _raw(
        items,
        classnames,
        src,
        rule="every image under images/<folder>/; folder -> label string (mappings/folder_to_objectnet_label.json) "
        "-> objectnet_313.json class name, ignoring case and spaces; rows ordered by folder, then file name",
    )


def gldv2_classname(category_url: str) -> str:
    """``http://commons.wikimedia.org/wiki/Category:Sagrada_Fam%C3%ADlia`` -> ``Sagrada Família``."""
    tail = (
        category_url.split("Category:", 1)[1]
        if "Category:" in category_url
        else category_url.rstrip("/").rsplit("/", 1)[-1]
    )
    return unquote(tail).replace("_", " ").strip()


def _read_csv(spec: DatasetSpec, path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with _require(spec, path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in columns if column not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{spec.key}: {path} lacks columns {missing} (has {reader.fieldnames})")
        return list(reader)


def _gldv2(spec: DatasetSpec, src: Path, subset: Path | None) -> RawData:
    """GLDv2 test images with exactly one landmark label; the class list is the landmarks present.

    The paper's 1,655-image subset is not public, so by default every usable labelled test image is
    taken; ``subset`` restricts to a list of test ids. Classes are landmark ids sorted numerically,
    named from their Wikimedia category; names that clash (ignoring case) get "(landmark <id>)".
    """
    solution = _read_csv(spec, src / "recognition_solution_v2.1.csv", ("id", "landmarks"))
    categories = _read_csv(spec, src / "train_label_to_category.csv", ("landmark_id", "category"))
    test_dir = _require(spec, src / "test", folder=True)

    images: dict[str, Path] = {}
    for path in sorted(test_dir.rglob("*")):
        if path.suffix.lower() == ".jpg" and path.is_file():
            if path.stem in images:
                raise DataError(f"gldv2: test image {path.stem} is both {images[path.stem]} and {path}")
            images[path.stem] = path

    labelled = {row["id"]: (row["landmarks"] or "").split() for row in solution}
    labelled = {test_id: marks for test_id, marks in labelled.items() if marks}
    single = {test_id: marks[0] for test_id, marks in labelled.items() if len(marks) == 1}
    usable = {test_id: mark for test_id, mark in single.items() if test_id in images}
    provenance: dict = {
        "rule": "test ids of recognition_solution_v2.1.csv with exactly one landmark id and an image test/**/<id>.jpg"
        + (", restricted to the ids in the subset file" if subset else "")
        + "; classes = landmark ids present, sorted numerically, named by their train_label_to_category.csv "
        "Wikimedia category (after 'Category:', URL-unquoted, '_' -> ' '; clashing names get ' (landmark <id>)'); "
        "rows ordered by test id",
        "labelled_test_ids": len(labelled),
        "multi_landmark_ids_left_out": len(labelled) - len(single),
        "labelled_ids_without_image": len(single) - len(usable),
    }
    if subset is not None:
        wanted = [line.strip() for line in _require(spec, subset).read_text("utf-8").splitlines() if line.strip()]
        not_found = [test_id for test_id in dict.fromkeys(wanted) if test_id not in usable]
        if not_found:
            raise DataError(
                f"gldv2: {len(not_found)} of {len(set(wanted))} ids in {subset} were not found as single-landmark "
                f"test images with an image under {test_dir} (e.g. {', '.join(not_found[:5])})"
            )
        usable = {test_id: usable[test_id] for test_id in wanted}
        provenance["subset"] = str(subset.resolve())

    url_of = {row["landmark_id"].strip(): row["category"] for row in categories}
    try:
        landmark_ids = sorted(set(usable.values()), key=int)
    except ValueError as error:
        raise DataError(f"gldv2: non-numeric landmark id in recognition_solution_v2.1.csv ({error})") from None
    unnamed = [mark for mark in landmark_ids if mark not in url_of]
    if unnamed:
        raise DataError(f"gldv2: landmark ids {unnamed[:10]} are not in train_label_to_category.csv")
    names = [gldv2_classname(url_of[mark]) or f"landmark {mark}" for mark in landmark_ids]
    clashes = Counter(name.casefold() for name in names)
    classnames = tuple(
        f"{name} (landmark {mark})" if clashes[name.casefold()] > 1 else name
        for name, mark in zip(names, landmark_ids, strict=True)
    )
    label_of = {mark: index for index, mark in enumerate(landmark_ids)}
    items = [(test_id, images[test_id], label_of[usable[test_id]]) for test_id in sorted(usable)]
    return _raw(items, classnames, src, landmark_ids=landmark_ids, **provenance)


def _logo(spec: DatasetSpec, src: Path) -> RawData:
    """FlickrSportLogos-10 test split: the ids in dataset/test.txt, labelled by their filename prefix."""
    test_list = _require(spec, src / "dataset" / "test.txt")
    image_dir = _require(spec, src / "dataset" / "JPEGImages", folder=True)
    class_ids = [class_id.casefold() for class_id in spec.class_data["class_ids"]]
    ids = [line.strip() for line in test_list.read_text("utf-8").splitlines() if line.strip()]
    duplicated = [image_id for image_id, count in Counter(ids).items() if count > 1]
    if duplicated:
        raise DataError(f"logo: ids listed twice in {test_list}: {duplicated[:10]}")
    items: list[tuple[str, Path, int]] = []
    for image_id in sorted(ids):
        prefix = image_id.split("_", 1)[0].casefold()
        if prefix not in class_ids:
            raise DataError(
                f"logo: test id {image_id!r} has prefix {prefix!r}, not one of {spec.class_data['class_ids']}"
            )
        path = image_dir / f"{image_id}.jpg"
        if not path.is_file():
            raise DataError(f"logo: image for test id {image_id!r} is missing ({path})")
        items.append((image_id, path, class_ids.index(prefix)))
    return _raw(
        items,
        _classnames(spec),
        src,
        rule="ids in dataset/test.txt; label = id prefix before the first '_' (case-insensitive) in class_ids order; "
        "rows ordered by id",
    )


# --- Hub snapshots ----------------------------------------------------------------------------


def _snapshot_revisions(src: Path) -> set[str]:
    """Commits recorded by ``hf download --local-dir`` (first line of each .metadata file)."""
    metadata = src / ".cache" / "huggingface" / "download"
    if not metadata.is_dir():
        return set()
    revisions = set()
    for path in metadata.rglob("*.metadata"):
        with path.open(encoding="utf-8") as handle:
            revisions.add(handle.readline().strip())
    return revisions - {""}


def _hub_snapshot(spec: DatasetSpec, src: Path, cache_dir: Path) -> RawData:
    """The pinned Hub split read from a local snapshot, row for row (sample keys are row indices)."""
    import datasets

    hub = spec.source
    assert isinstance(hub, HubSource)
    revisions = _snapshot_revisions(src)
    if revisions and revisions != {hub.revision}:
        raise DataError(
            f"{spec.key}: {src} was downloaded at revision(s) {sorted(revisions)}, but the benchmark pins "
            f"{hub.revision}; row order may differ. Expected {_expected_source(spec)}"
        )
    if not list(src.glob(hub.data_files)):
        files = (path for path in src.rglob("*") if path.is_file() and ".cache" not in path.parts)
        found = sorted(str(path.relative_to(src)) for path in files)
        shown = ", ".join(found[:20]) + (f" (+{len(found) - 20} more)" if len(found) > 20 else "")
        raise HubLayoutError(
            f"{spec.key}: no file in {src} matches {hub.data_files!r}, the split's files at "
            f"{hub.repo_id}@{hub.revision[:7]}; found {shown or 'no files'}. Expected {_expected_source(spec)}"
        )
    kwargs = {"path": hub.builder, "data_files": {hub.split: str(src / hub.data_files)}}
    try:
        rows = datasets.load_dataset(**kwargs, split=hub.split, cache_dir=str(cache_dir))
    except (datasets.exceptions.DatasetsError, FileNotFoundError, ValueError, RuntimeError) as error:
        raise DataError(
            f"{spec.key}: could not read split {hub.split!r} from {src} ({error}); expected {_expected_source(spec)}"
        ) from error
    rows = to_standard_columns(rows, hub).select_columns(["image", "label"])
    rows = rows.cast_column("image", datasets.Image(decode=False))
    classnames = _classnames(spec)
    check_label_names(spec, getattr(rows.features["label"], "names", None), f"the snapshot {src}")

    def records() -> Iterator[Record]:
        index = 0
        for batch in rows.iter(batch_size=256):
            for image, label in zip(batch["image"], batch["label"], strict=True):
                yield str(index), _image_bytes(src, image), int(label) if label is not None else label
                index += 1

    return RawData(
        records(),
        rows.num_rows,
        classnames,
        {
            "source": str(src.resolve()),
            "repo_id": hub.repo_id,
            "revision": hub.revision,
            "snapshot_revision": next(iter(revisions)) if revisions else "unverified (no hf download metadata)",
            "split": hub.split,
            "data_files": hub.data_files,
            "rule": "row i is row i of the pinned split; source_id = row index",
        },
    )


def _image_bytes(src: Path, image: dict | None) -> bytes:
    """An undecoded Image value's bytes, read from its path when the split stores paths only."""
    if not image:
        return b""
    if image.get("bytes") is not None:
        return image["bytes"]
    path = Path(image.get("path") or "")
    path = path if path.is_absolute() else src / path
    try:
        return path.read_bytes()
    except OSError:
        return b""
