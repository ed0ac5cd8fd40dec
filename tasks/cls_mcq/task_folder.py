"""The lmms-eval task folder at run time: where ``--include_path`` points, and the source YAML of each dataset.

:func:`task_folder_for` gives lmms-eval's ``--include_path``: this package folder, or, when the data root holds
prepared copies or negatives/description files, a copy whose source YAMLs read those copies (swapped in
atomically). ``_generate_configs.py`` (a script, imported by nothing) writes the folder's files and uses
:func:`source_yaml` for the same ``_<dataset>_source_yaml`` files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from clsbench.tasks.cls_mcq.yamls import source_file, source_yaml
from clsbench.tasks.data.loading import data_root, find_prepared
from clsbench.tasks.protocol.registry import DATASETS

PACKAGE_TASK_FOLDER = Path(__file__).parent
DATA_ROOT_MARKER = "clsbench_data_root.txt"  # in a copy: the data root it was made for (utils.data_dir_of)


def task_folder_for(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder for ``lmms-eval --include_path``: prepared local copies win over the Hub.

    Args:
        data_dir: the data root.

    Returns:
        This package folder when the data root holds nothing of ours; otherwise ``<root>/_lmms_tasks``, a
        copy whose source YAMLs read the prepared copies and whose hooks find the negatives files there.
    """
    root = data_root(data_dir)
    has_files = (root / "negatives").is_dir() or (root / "descriptions").is_dir()
    prepared = {key: find_prepared(key, root) for key in DATASETS}
    if not has_files and not any(prepared.values()):
        return PACKAGE_TASK_FOLDER
    files = {
        str(path.relative_to(PACKAGE_TASK_FOLDER)): path.read_bytes()
        for path in sorted(PACKAGE_TASK_FOLDER.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    files.update({source_file(key): source_yaml(DATASETS[key], prepared[key]).encode() for key in DATASETS})
    files[DATA_ROOT_MARKER] = f"{root}\n".encode()
    return swap_in_task_folder(root / "_lmms_tasks", files)


def swap_in_task_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """Make ``folder`` hold exactly ``files``, atomically for any concurrent reader.

    ``folder`` is a symbolic link to ``<folder>.<content hash>``, a folder written completely under
    another name and then renamed; the link is replaced in one ``rename``, so a reader sees the old
    or the new folder, never a half-written file. Unchanged content writes nothing. Versions no link
    points at are removed once an hour old (a reader that started on one has long finished).
    """
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{len(files[name])}\0".encode() + files[name])
    version = folder.with_name(f"{folder.name}.{digest.hexdigest()[:16]}")
    if folder.is_symlink() and os.readlink(folder) == version.name and version.is_dir():
        return folder
    if not version.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
        try:
            staging.rename(version)
        except OSError:  # another process put the same version in place first
            shutil.rmtree(staging, ignore_errors=True)
    link = folder.with_name(f".{folder.name}.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(version.name)
    if folder.is_dir() and not folder.is_symlink():  # a copy written by clsbench <= 0.3: moved aside once
        old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
        folder.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(link, folder)
    for other in folder.parent.glob(f"{folder.name}.*"):
        if other != version and other.is_dir() and time.time() - other.stat().st_mtime > 3600:
            shutil.rmtree(other, ignore_errors=True)
    return folder
