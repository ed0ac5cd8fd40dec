"""What produced a result store, and one writer per output: shared by MLLM answers, CLIP predictions, negatives.

* :func:`weights_fingerprint` identifies model weights: a Hub id with its revision (the commit
  transformers resolved, when known), or for a local path a hash of the weight files' names and
  contents (:func:`file_sha256`). Weights changed at the same path get a new one, even with their
  size and modification time kept (``cp -p``, ``rsync -a``, ``touch -r``).
* :func:`file_sha256` hashes a file's full content once and caches the hash by the file's device,
  inode, size, modification time and status-change time (``st_ctime``, which no user can set back:
  every write and every ``utime`` moves it), in memory and in ``$CLSBENCH_HASH_CACHE`` (default
  ``~/.cache/clsbench/file-hashes.json``). The first run on a 15 GB checkpoint reads it once (about
  10 s from a fast disk); later runs cost a ``stat`` per file.
* :func:`fingerprint_differences` says, field by field, why a stored fingerprint is not the current
  one; a resume or cache hit under a different fingerprint is refused with that list.
* :class:`OutputLock` holds ``<folder>/.clsbench.lock`` while a run appends to the folder; a second
  concurrent run fails at once, naming the holder (host, pid, command, start time). The lock is an
  OS file lock, so a killed run releases it.
* :func:`writing` turns a failed write (full disk, read-only folder, no permission) into
  :class:`OutputWriteError`, whose message names the path, the cause and what to do.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from clsbench.tasks.runtime.errors import ClsbenchError

LOCK_FILE = ".clsbench.lock"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json", ".model", ".tiktoken", ".txt", ".jinja")


class OutputWriteError(ClsbenchError, ValueError):
    """An output could not be written (full disk, read-only folder, ...); the message names the path and the cause.

    A ``ValueError``, so every command's error handler prints it as ``clsbench <command>: error: ...``.
    """

    def __init__(self, message: str, cause: OSError | None = None) -> None:
        super().__init__(message)
        self.errno = cause.errno if cause is not None else None


READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_failure(path: str | os.PathLike, error: OSError, what: str) -> OutputWriteError:
    """The message for a failed write of ``what`` to ``path``: the path, the system's cause and what to do."""
    cause = error.strerror or str(error)
    code = errno.errorcode.get(error.errno or 0)
    if error.errno in FULL_ERRNOS:
        advice = (
            "the disk (or your quota) is full: free space there or write elsewhere; what was written before "
            "is kept and a rerun resumes from it"
        )
    elif error.errno in READ_ONLY_ERRNOS:
        advice = "the folder is read-only or not writable by this user: choose a writable one"
    else:
        advice = "check the folder and the disk"
    where = error.filename if error.filename and str(error.filename) != str(path) else None
    detail = f" ({where})" if where else ""
    return OutputWriteError(
        f"cannot write {what} to {path}{detail}: {cause}{f' [{code}]' if code else ''}; {advice}", error
    )


@contextmanager
def writing(path: str | os.PathLike, what: str) -> Iterator[None]:
    """``with writing(path, "predictions"): ...``: an ``OSError`` inside becomes an :class:`OutputWriteError`."""
    try:
        yield
    except OutputWriteError:
        raise
    except OSError as error:
        raise write_failure(path, error, what) from error


class StoreMismatch(ClsbenchError, RuntimeError):
    """Stored results were made under another fingerprint; the message says what differs and how to start fresh."""


class OutputLocked(ClsbenchError, RuntimeError):
    """Another run is writing to the same output; the message names it."""


def _hash_cache_path() -> Path:
    explicit = os.environ.get("CLSBENCH_HASH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clsbench" / "file-hashes.json"


_HASHES: dict[str, tuple[str, str]] = {}  # resolved path -> (stat stamp, sha256), this process


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's content, computed once per version of the file (see the module note)."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    known = _HASHES.get(str(path))
    if known and known[0] == stamp:
        return known[1]
    cache_path = _hash_cache_path()
    try:
        cache = json.loads(cache_path.read_text("utf-8"))
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        _HASHES[str(path)] = (stamp, entry["sha256"])
        return entry["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    value = digest.hexdigest()
    _HASHES[str(path)] = (stamp, value)
    cache = {name: entry for name, entry in cache.items() if os.path.exists(name)}  # forget deleted files
    cache[str(path)] = {"stamp": stamp, "sha256": value}
    try:  # a cache only: a read-only home or a concurrent writer costs a rehash, never a wrong hash
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(cache), "utf-8")
        os.replace(temporary, cache_path)
    except OSError:
        pass
    return value


def weights_fingerprint(model: str, revision: str | None = None) -> dict:
    """An identity for model weights: Hub id and revision, or a local path's files (names and contents)."""
    path = Path(str(model).removeprefix("local-dir:")).expanduser()
    if path.exists():
        files = (
            [path]
            if path.is_file()
            else sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES and ".cache" not in p.parts
            )
        )
        digest = hashlib.sha256()
        for file in files:
            name = file.relative_to(path) if path.is_dir() else file.name
            digest.update(f"{name}|{file.stat().st_size}|{file_sha256(file)}\n".encode())
        return {
            "local": str(path.resolve()),
            "files": len(files),
            "content": "sha256",  # stores made by clsbench <= 0.3 hashed sizes and mtimes: they differ here
            "files_sha256": digest.hexdigest()[:32],
        }
    return {"hub": str(model), "revision": revision or "unresolved"}


def read_jsonl_records(path: str | os.PathLike, required: str, *, cut_torn_tail: bool = False) -> list[dict]:
    """The readable records of an append-only JSONL file, in order.

    A torn last line (no newline: a kill mid-write) is dropped, and cut off the file when
    ``cut_torn_tail`` (so the next append starts a line). Any other unreadable line (not JSON, not an
    object, or without ``required``) is skipped and reported on stderr with the file and line numbers;
    the good lines after it are kept, on disk and in the result. The first record may be a header
    (a ``format`` field) and needs no ``required`` field.
    """
    path = Path(path)
    data = path.read_bytes()
    records, bad, end = [], [], 0
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):  # only the last line can lack one
            break
        end += len(line)
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not line.strip():
            continue
        if not isinstance(record, dict) or (required not in record and not (number == 1 and "format" in record)):
            bad.append(number)
            continue
        records.append(record)
    if cut_torn_tail and end != len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        print(
            f"clsbench: {path}: skipped {len(bad)} unreadable line(s) (line {shown}); the lines after them are kept",
            file=sys.stderr,
            flush=True,
        )
    return records


def fingerprint_differences(stored: dict, current: dict, prefix: str = "") -> list[str]:
    """``field: stored -> current`` for every field that differs (nested dicts flattened with dots)."""
    differences = []
    for key in sorted(set(stored) | set(current)):
        old, new = stored.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += fingerprint_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def check_fingerprint(stored: dict, current: dict, where: str, fresh: str) -> None:
    """Refuse to reuse results from ``where`` made under another fingerprint."""
    differences = fingerprint_differences(stored, current)
    if differences:
        raise StoreMismatch(
            f"{where} was made under other settings or weights, so it is not reused:\n  "
            + "\n  ".join(differences)
            + f"\nTo start fresh: {fresh}"
        )


class OutputLock:
    """An exclusive, non-blocking lock on an output folder (``with OutputLock(folder): ...``)."""

    def __init__(
        self, folder: str | os.PathLike, what: str = "results", name: str = LOCK_FILE, *, per_process: bool = False
    ) -> None:
        self.folder = Path(folder)
        self.what = what
        self.name = name
        self.per_process = per_process  # True: every holder in this process shares the lock (it counts them)
        self._lock = None

    @property
    def path(self) -> Path:
        return self.folder / self.name

    def acquire(self) -> OutputLock:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path), timeout=0, is_singleton=self.per_process)
        try:
            with writing(self.path, f"the lock of these {self.what}"):
                self.folder.mkdir(parents=True, exist_ok=True)
                try:
                    lock.acquire()
                except Timeout:  # a TimeoutError, so an OSError: contention, not a failed write
                    raise OutputLocked() from None
        except OutputLocked:
            owner = self._owner()
            raise OutputLocked(
                f"{self.folder} is being written by another clsbench run ({owner}); two runs appending to one "
                f"output would mix their {self.what}. Wait for it to finish, or use another output folder."
            ) from None
        self._lock = lock
        owner_path = self.path.with_name(self.name + ".owner")
        try:
            with writing(owner_path, f"the lock of these {self.what}"):
                self._write_owner(owner_path)
        except OutputWriteError:
            self.release()
            raise
        return self

    def _write_owner(self, owner_path: Path) -> None:
        owner_path.write_text(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "command": " ".join(sys.argv),
                    "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            ),
            "utf-8",
        )

    def _owner(self) -> str:
        try:
            owner = json.loads(self.path.with_name(self.name + ".owner").read_text("utf-8"))
            return f"pid {owner['pid']} on {owner['host']} since {owner['since']}: {owner['command']}"
        except (OSError, ValueError, KeyError):
            return "holder unknown"

    def release(self) -> None:
        if self._lock is not None:
            if self._lock.lock_counter <= 1:  # the last holder in this process
                self.path.with_name(self.name + ".owner").unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
