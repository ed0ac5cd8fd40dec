"""The VLMEvalKit MCQ TSV: rows with the lmms-eval tasks' questions, its sidecar, its image files and their stamps.

:func:`write_tsv` (``clsbench export-vlmeval --datasets DATASET... --output-dir DIR``) writes one TSV per dataset
(``ClsBench_food101.tsv``, names from the registry): ``index`` (the sample key), ``question``, option columns
``A``.. (class names), ``answer`` (letter), ``category``, ``split``, ``dataset``, ``sample_key``, ``label``,
and the image either inline (``image``: base64 of the stored bytes) or as the original file (``image_path``,
under ``$LMUData/images/<name>/``), plus a sidecar (``<name>.clsbench.json``: data root, the copy's content
fingerprint, the protocol version of the questions, class names, sha256, decoded images). An image the one
decoder changes (16-bit, EXIF orientation, CMYK, palette) is exported as its decoded pixels in PNG instead.
Rows come from :func:`clsbench.tasks.data.samples.add_questions`, so the questions are the lmms-eval tasks' own.
:func:`prepare_images` keeps VLMEvalKit's image folder in step with the TSV it reads (never VLMEvalKit's lossy
localization, never a stale decoded image).
An export holds ``<out_dir>/.<name>.tsv.lock`` (a file lock), so concurrent exports of one dataset (every rank of
a ``torchrun``) write it once: :func:`ensure_exported` checks again once it holds the lock.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

from clsbench.tasks.data.images import decoder_changes, lossless_png
from clsbench.tasks.data.loading import DataError, copy_fingerprint, data_root, load_rows
from clsbench.tasks.data.samples import add_questions, open_image
from clsbench.tasks.protocol.catalog import PROTOCOL_VERSION
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import SampleError
from clsbench.tasks.protocol.registry import DEFAULT_NAMES, get_dataset
from clsbench.tasks.toolkits.vlmeval.names import NAME_TO_KEY, images_folder


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


def question_docs(key: str, data_dir: str | os.PathLike | None = None, name_set: str = DEFAULT_NAMES):
    """The dataset's questions (the same docs the lmms-eval task builds), loaded and checked once."""
    return add_questions(load_rows(key, data_dir), key, name_set=name_set, checked=True)


def tsv_rows(
    key: str, data_dir: str | os.PathLike | None = None, name_set: str = DEFAULT_NAMES, docs=None
) -> Iterator[dict]:
    """The dataset's questions as VLMEvalKit MCQ rows (the same docs the lmms-eval task builds).

    ``image`` holds the stored image's original bytes, unless the one decoder would change them (16-bit,
    EXIF orientation, CMYK, palette: :func:`clsbench.tasks.data.images.decoder_changes`): then the decoded
    pixels as PNG, and ``decoded`` says why (VLMEvalKit's own models open the file with a plain
    ``convert("RGB")``, which would show a 16-bit image white and a rotated photo sideways).
    :func:`write_tsv` writes the image as base64 or as a file. ``docs`` (an iterable of
    :func:`question_docs`' rows, a progress bar over them, say) saves loading them again.
    """
    spec = get_dataset(key)
    split = getattr(spec.source, "split", "test")
    for doc in question_docs(key, data_dir, name_set) if docs is None else docs:
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


# v2: the copy's content fingerprint ("data") and the questions' protocol version ("protocol_version"); a v1
# sidecar still identifies its TSV (sha256), but its export is stale: it says neither.
SIDECAR_FORMAT = "clsbench-vlmeval-tsv-v2"
SIDECAR_FORMATS = ("clsbench-vlmeval-tsv-v1", SIDECAR_FORMAT)


IMAGES_STAMP = ".clsbench_tsv.json"  # in $LMUData/images/<name>/: which TSV the images there belong to


def sidecar_path(tsv: Path) -> Path:
    """``<name>.clsbench.json`` beside the TSV: where it came from (data root, class names) and its digest."""
    return tsv.with_name(tsv.stem + ".clsbench.json")


def read_sidecar(tsv: Path) -> dict | None:
    try:
        content = json.loads(sidecar_path(tsv).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) and content.get("format") in SIDECAR_FORMATS else None


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
        raise SampleError(
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


@contextlib.contextmanager
def export_locked(out_dir: str | os.PathLike, name: str) -> Iterator[None]:
    """Hold ``<out_dir>/.<name>.tsv.lock`` (an OS lock: a killed export releases it) for one export of ``name``;
    says on stderr when another process holds it (another rank exporting ``name``). A failed export leaves
    nothing behind (:func:`_clean_after_failure`)."""
    from filelock import Timeout

    out = Path(out_dir).expanduser().resolve()
    created = _first_missing(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / f".{name}.tsv.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(
            f"clsbench: {name}.tsv: waiting for another process to finish exporting it ({lock.lock_file})",
            file=sys.stderr,
        )
        lock.acquire()
    try:
        yield
    except BaseException:
        _clean_after_failure(lock, created)
        raise
    finally:
        lock.release()


def write_tsv(
    key: str,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    name_set: str = DEFAULT_NAMES,
    images: str = "auto",
    progress: bool = True,
) -> Path:
    """Write ``<out_dir>/<VLMEvalKit name>.tsv`` and its sidecar, holding the dataset's export lock (see
    :func:`_write_tsv`, which documents the arguments)."""
    with export_locked(out_dir, get_dataset(key).vlmeval_name_for(name_set)):
        return _write_tsv(key, out_dir, data_dir, name_set, images, progress)


def ensure_exported(
    key: str,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    name_set: str = DEFAULT_NAMES,
    images: str = "auto",
    progress: bool = True,
    force: bool = False,
) -> str | None:
    """Export the dataset's TSV unless a current one is there (:func:`export_is_current`), checked while holding
    its export lock: of several processes (the ranks of a ``torchrun``), the first exports and the others wait,
    then find it current; an explicit ``images`` mode other than the TSV's also re-exports, and ``force`` always
    does (without a line: it was asked for). Returns why it was exported, or None (the TSV was current and kept)."""
    name = get_dataset(key).vlmeval_name_for(name_set)
    tsv = Path(out_dir).expanduser().resolve() / f"{name}.tsv"
    with export_locked(out_dir, name):
        if force:
            _write_tsv(key, out_dir, data_dir, name_set, images, progress)
            return "forced"
        stale = export_is_current(tsv, data_dir, name_set) if tsv.is_file() else f"no {tsv}"
        held = (read_sidecar(tsv) or {}).get("images") if not stale else None
        if not stale and images != "auto" and held != images:
            stale = f"{tsv} holds {held} images, {images} asked"
        if stale:
            print(f"clsbench: exporting {name}.tsv to {tsv.parent} ({stale})", file=sys.stderr)
            _write_tsv(key, out_dir, data_dir, name_set, images, progress)
        return stale


def _first_missing(folder: str | os.PathLike) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (what an export would create), or None."""
    path, missing = Path(folder).expanduser().resolve(), None
    while not path.exists():
        path, missing = path.parent, path
    return missing


def _clean_after_failure(lock: FileLock, created: Path | None) -> None:
    """A failed export leaves nothing behind: its lock file goes, and so does ``created`` (the folder it made) when
    that holds nothing but export locks; a folder that was there, or holds anything else, stays. (A rank that was
    waiting on the removed lock file may then export beside another: each writes its own partial file and
    replaces the TSV atomically, so the TSV is whole either way.)"""
    lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)
    if created is None or not created.is_dir():
        return
    files = [path for path in created.rglob("*") if not path.is_dir()]
    if all(path.name.endswith(".tsv.lock") for path in files):
        shutil.rmtree(created, ignore_errors=True)


def _write_tsv(
    key: str,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    name_set: str = DEFAULT_NAMES,
    images: str = "auto",
    progress: bool = True,
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
            inline TSV would pass VLMEvalKit's 1 GiB threshold (estimated from the first rows and the copy's
            own row count).
        progress: a tqdm bar per dataset on stderr.

    Returns:
        The TSV's path (written to a partial file first, so a killed export leaves no half TSV).
    """
    if images not in IMAGE_MODES:
        raise ValueError(f"images must be one of {IMAGE_MODES}, got {images!r}")
    out = Path(out_dir).expanduser().resolve()
    spec = get_dataset(key)
    name = spec.vlmeval_name_for(name_set)
    target = out / f"{name}.tsv"
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")  # this process's own
    docs = question_docs(key, data_dir, name_set)  # before any folder is made: a failed load leaves none
    fingerprint = copy_fingerprint(key, data_dir)  # the rows just read (cached file hashes: read once per copy)
    bar = tqdm(docs, total=len(docs), desc=f"export {name}", unit="q", disable=not progress, leave=progress)
    rows = tsv_rows(key, data_dir, name_set, docs=bar)
    head = list(itertools.islice(rows, 64))
    if not head:
        raise SampleError(f"{key}: the split has no rows")
    if images == "auto":  # the actual copy's row count, not the registry's (a partial copy stays inline)
        mean = sum(len(row["image"]) for row in head) / len(head) * 4 / 3  # base64
        images = "files" if mean * len(docs) > 0.9 * INLINE_LIMIT_BYTES else "inline"
    out.mkdir(parents=True, exist_ok=True)
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
        bar.close()
        partial.unlink(missing_ok=True)
    stat = target.stat()
    sidecar = {
        "format": SIDECAR_FORMAT,
        "name": name,
        "dataset": key,
        "class_names": name_set,
        "data_root": str(data_root(data_dir)),
        "data": fingerprint,  # the prepared copy's content digest, or the pinned Hub split
        "protocol_version": PROTOCOL_VERSION,  # how the questions were drawn and asked
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
    """None when ``tsv`` holds this clsbench's questions (its protocol version) about the data ``data_dir`` holds
    now (the copy's content fingerprint, not only its folder) with ``name_set``'s names; else why it does not."""
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
    if sidecar.get("protocol_version") != PROTOCOL_VERSION:
        return (
            f"{tsv} holds questions of protocol version {sidecar.get('protocol_version') or 'unrecorded'}, "
            f"this clsbench asks {PROTOCOL_VERSION}"
        )
    key = NAME_TO_KEY.get(tsv.stem) or sidecar.get("dataset")
    current = copy_fingerprint(key, data_dir)
    if sidecar.get("data") != current:
        return f"{tsv} was exported from other data ({sidecar.get('data') or 'unrecorded'}; the copy is now {current})"
    return None


def export_identity(tsv: Path) -> str:
    """What a model was asked when it answered ``tsv``'s rows: the TSV's identity, plus the data's fingerprint and
    the protocol version its sidecar records (image files beside the TSV are covered by the data's fingerprint)."""
    sidecar = read_sidecar(tsv) or {}
    return f"{tsv_identity(tsv)}|data={sidecar.get('data')}|protocol={sidecar.get('protocol_version')}"


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
            raise DataError(
                f"{tsv.name}: the image files in {folder} belong to another export (stamp {stamp.get('tsv')}, TSV "
                f"{identity}); rewrite both with `clsbench export-vlmeval --datasets ... --output-dir {tsv.parent}`"
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
