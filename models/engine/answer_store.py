"""Resumable MLLM runs: every reply ``clsbench_hf`` computes is appended (and fsynced) per batch, and reused on rerun.

lmms-eval 0.7.3's ``--use_cache`` writes its cache only after the whole request list is done, so a
killed or failed run loses every answer. This store does not: a kill loses at most the batch in
flight. Layout, under ``answer_store`` (default ``$CLSBENCH_ANSWER_STORE``, else
``<log_dir>/answers``)::

    <model>-<id hash>_<mode>_rank<R>.jsonl    line 1: {"format": "clsbench-answers-v1", "fingerprint": {...}}
                                    then:   {"key": ..., "task": ..., "doc_id": ..., "reply": ..., "record": ...}

``key`` hashes the task, the document id, the prompt (question and options), the image bytes and,
in generate mode, the request's generation settings (``max_new_tokens``, stop strings, temperature,
... as lmms-eval's ``--gen_kwargs`` or the task set them), so a changed dataset or setting never hits.
``fingerprint`` is the model identity and weights fingerprint
(:func:`clsbench.tasks.runtime.stores.weights_fingerprint`), the dtype, the mode and every answer setting;
a store made under another fingerprint is refused with the differences. Each rank appends to its
own file and reads all ranks' files, so a rerun with another process count still reuses them. A
torn last line (a kill mid-write) is cut off and its question recomputed; a garbled line elsewhere
is skipped and reported (its question recomputed), and the lines after it are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from clsbench.tasks.runtime.stores import (
    READ_ONLY_ERRNOS,
    OutputLock,
    OutputWriteError,
    check_fingerprint,
    read_jsonl_records,
    writing,
)

FORMAT = "clsbench-answers-v1"


def answer_key(
    task: str, doc_id: int, prompt: str, options, image_bytes: Iterable[bytes], settings: dict | None = None
) -> str:
    """A question's identity: task, document, prompt, options, image content and the request's reply settings.

    ``settings`` are the per-request settings that change a reply (in generate mode: the token limit,
    the stop strings and every other generation argument the toolkit passed); ``None`` when none do.
    """
    fields = [task, int(doc_id), prompt, list(options or [])]
    if settings is not None:
        fields.append(settings)
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str).encode())
    for data in image_bytes:
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _read(path: Path, truncate: bool) -> tuple[dict | None, dict[str, dict]]:
    """(header, entries by key) of one store file: a torn last line is dropped (and cut off when ``truncate``);
    a garbled line elsewhere is skipped and reported, never the good lines after it."""
    records = read_jsonl_records(path, "key", cut_torn_tail=truncate)
    if not records:
        return None, {}
    header = records[0] if "format" in records[0] else None
    if header is None:
        raise ValueError(
            f"{path}: its first line (the header with the fingerprint) is unreadable, so its answers cannot be "
            f"checked against this model; move it away to start fresh"
        )
    return header, {record["key"]: record for record in records[1:]}


class AnswerStore:
    """The replies of one model under one fingerprint, across ranks and reruns.

    ``with store: ...`` holds the rank file's lock while a run appends (a second concurrent run with
    the same store fails at once, naming the holder), reads every rank's file and checks its
    fingerprint; :meth:`get` and :meth:`add` work inside that block. :meth:`hold` takes the lock earlier
    (``clsbench_hf`` takes it before loading the model). With a ``scope`` (a run's tasks and log dir),
    the run appends to and locks its own file, ``<prefix>_rank<R>.<scope>.jsonl``, so a run on other tasks
    with the same model is not refused; every run reads all of the model's files.
    """

    def __init__(
        self, folder: str | os.PathLike, name: str, fingerprint: dict | None, rank: int = 0, scope: str | None = None
    ) -> None:
        self.folder = Path(folder)
        self.prefix = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"
        self.fingerprint = fingerprint  # may be set after construction (the lock is taken before the model loads)
        own = f"{self.prefix}_rank{rank}" + (f".{scope}" if scope else "")  # scope: one run's tasks and log dir
        self.path = self.folder / f"{own}.jsonl"
        self.lock = OutputLock(self.folder, "answers", name=f".{own}.lock", per_process=True)
        self.entries: dict[str, dict] = {}
        self.read_only: str | None = None  # why nothing can be written here (a read-only store is reused as it is)
        self._held = False

    def hold(self) -> AnswerStore:
        """Take this store's lock now (before a model loads, so a second run is refused at once); a store on a
        read-only filesystem is not locked: it is read as it is, and :meth:`check_writable` refuses to add to it."""
        if not self._held:
            try:
                self.lock.acquire()
            except OutputWriteError as error:
                if error.errno not in READ_ONLY_ERRNOS:
                    raise
                self.read_only = str(error)
            self._held = True
        return self

    def __enter__(self) -> AnswerStore:
        self.hold()
        try:
            self._load()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()
        self._held = False

    def check_writable(self, missing: int) -> None:
        """Refuse, before any computing, to answer ``missing`` questions into a store that cannot be written."""
        if missing and self.read_only:
            raise OutputWriteError(
                f"the answer store {self.folder} cannot be written and {missing} repl(y/ies) are not in it: "
                f"{self.read_only}. Pass answer_store=<a writable folder> (its replies are then computed there), "
                "or answer_store=none"
            )

    def _load(self) -> None:
        self.entries = {}
        for path in sorted(self.folder.glob(f"{self.prefix}_rank*.jsonl")):
            header, entries = _read(path, truncate=path == self.path and not self.read_only)
            if header is None:
                continue
            if header.get("format") != FORMAT:
                raise ValueError(f"{path} is not a clsbench answer store ({FORMAT})")
            check_fingerprint(
                header.get("fingerprint") or {},
                self.fingerprint,
                str(path),
                f"delete {self.folder / self.prefix}_rank*.jsonl, or pass answer_store=<another folder>",
            )
            self.entries.update(entries)
        if not self.read_only and (not self.path.is_file() or self.path.stat().st_size == 0):
            self._append([{"format": FORMAT, "fingerprint": self.fingerprint}])

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def add(self, entries: list[dict]) -> None:
        """Append entries (each with ``key``) and fsync: after this returns, a kill loses none of them."""
        self._append(entries)
        self.entries.update((entry["key"], entry) for entry in entries)

    def _append(self, lines: list[dict]) -> None:
        if not lines:
            return
        self.check_writable(len(lines))
        text = "".join(json.dumps(line, ensure_ascii=False, default=str) + "\n" for line in lines)
        with writing(self.path, "answers to the answer store"):
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
