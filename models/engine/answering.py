"""From a question to a reply string, in one of three answer modes; shared by the lmms-eval and VLMEvalKit adapters.

The reply is always what the task's scorer (``clsbench.tasks.protocol.parsing.parse_answer``) reads:
free text in ``generate`` mode, a bare letter (``"C"``) in ``score`` and ``loglik`` modes. What
the decision was based on (the letter distribution, the per-option log-likelihoods) goes to a
JSONL log next to it, never into the reply.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clsbench.models.engine.hf_vlm import HFVisionLanguageModel, VisualPrompt
from clsbench.models.engine.scoring import Norm, OptionScore, decide_letter, rank_options
from clsbench.models.engine.settings import (
    DEFAULT_MAX_NEW_TOKENS,
    LoglikContext,
    Mode,
    ModelSettings,
    TransformersSettings,
)
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import prompt_parts


@dataclass(frozen=True)
class Query:
    """One question as a toolkit hands it over."""

    images: tuple
    prompt: str  # the full prompt the toolkit formatted (question, instruction, option lines)
    options: tuple[str, ...] | None = None  # class names, A first; None: read from the prompt's option lines
    question: str | None = None  # the bare question (the loglik context)
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    stop: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)  # where it came from, for errors and logs (task, doc_id, answer, ...)

    def where(self) -> str:
        keys = ("task", "dataset", "sample_key", "doc_id", "index")
        return ", ".join(f"{key} {self.meta[key]}" for key in keys if key in self.meta) or "a query"


@dataclass(frozen=True)
class Reply:
    text: str
    record: dict | None = None  # what the decision was based on; None in generate mode


def score_record(meta: dict, pred: str, probs: dict, confidence, letter_mass, **extra) -> dict:
    """The decision record of a ``score`` answer (every engine): the letter and the letters' distribution."""
    record = {
        **meta,
        "mode": "score",
        **extra,
        "pred": pred,
        "confidence": confidence,
        "letter_mass": letter_mass,
        "probs": probs,
    }
    return _with_correct(record)


def loglik_record(
    meta: dict, names: Sequence[str], scores: Sequence[OptionScore], norm: Norm, cfg_weight: float, **extra
) -> dict:
    """The decision record of a ``loglik`` answer (every engine): the ranking under each norm and every option's
    log-likelihoods; ``pred`` is the reply's letter."""
    letters = LETTERS[: len(names)]
    record = {
        **meta,
        "mode": "loglik",
        **extra,
        "norm": norm,
        "cfg_weight": cfg_weight,
        "pred": letters[rank_options(scores, norm, cfg_weight)],
        "pred_sum": letters[rank_options(scores, "sum", cfg_weight)],
        "pred_mean": letters[rank_options(scores, "mean", cfg_weight)],
        "options": {
            letter: {
                "name": name,
                "logprob": score.logprob,
                "n_tokens": score.n_tokens,
                "uncond_logprob": score.uncond_logprob,
            }
            for letter, name, score in zip(letters, names, scores)
        },
    }
    return _with_correct(record)


class Answerer:
    """Applies one answer mode to batches of queries."""

    def __init__(
        self,
        engine: HFVisionLanguageModel,
        mode: Mode = "generate",
        *,
        loglik_norm: Norm = "sum",
        cfg_weight: float = 0.0,
        loglik_context: LoglikContext = "question",
        loglik_chunk: int = 32,
        loglik_reuse: bool = True,
        max_new_tokens: int | None = None,
    ) -> None:
        ModelSettings(mode=mode, loglik_norm=loglik_norm, loglik_context=loglik_context)  # checked as everywhere
        self.engine = engine
        self.mode = mode
        self.loglik_norm = loglik_norm
        self.cfg_weight = float(cfg_weight)
        self.loglik_context = loglik_context
        self.loglik_chunk = int(loglik_chunk)
        self.loglik_reuse = bool(loglik_reuse)  # one prefill per question, every option from its KV cache
        # a batch's questions in one prefill and one packed step (False: one question at a time, the reference)
        self.loglik_batched = True
        self.max_new_tokens = max_new_tokens

    def prepare(self, queries: Sequence[Query]):
        """Model inputs for one batch (generate and score modes; None in loglik mode, which encodes per option)."""
        if self.mode == "loglik" or not queries:
            return None
        return self.engine.prepare([VisualPrompt(tuple(q.images), q.prompt) for q in queries])

    def answer(self, queries: Sequence[Query], inputs=None) -> list[Reply]:
        """Replies in query order; in generate and score modes the batch is one model call.

        ``inputs`` are the batch's model inputs from :meth:`prepare` (built ahead by an input pipeline);
        without them they are built here.
        """
        if not queries:
            return []
        if self.mode == "generate":
            return self._generate(queries, inputs)
        if self.mode == "score":
            return self._score(queries, inputs)
        if self.loglik_reuse and self.loglik_batched:
            return self._loglik_batch(queries)
        return [self._loglik(query) for query in queries]

    def _generate(self, queries: Sequence[Query], inputs=None) -> list[Reply]:
        limit = self.max_new_tokens or max(query.max_new_tokens for query in queries)
        stops = tuple(dict.fromkeys(stop for query in queries for stop in query.stop))
        texts = self.engine.generate(
            [VisualPrompt(tuple(q.images), q.prompt) for q in queries], limit, stops, inputs=inputs
        )
        return [Reply(text) for text in texts]

    def _letters(self, query: Query) -> str:
        parts = prompt_parts(query.prompt) if query.options is None else None
        options = query.options if query.options is not None else parts[1] if parts else None
        if options is None:
            raise ValueError(
                f"score mode needs the options, and {query.where()} has neither an options list "
                "nor 'A. ...' option lines in its prompt"
            )
        return LETTERS[: len(options)]

    def _score(self, queries: Sequence[Query], inputs=None) -> list[Reply]:
        letters = [self._letters(query) for query in queries]
        logits, greedy = self.engine.next_token_logits(
            [VisualPrompt(tuple(q.images), q.prompt) for q in queries], inputs
        )
        replies = []
        for row, (query, option_letters) in enumerate(zip(queries, letters)):
            decision = decide_letter(logits[row], self.engine.letter_ids, option_letters)
            record = score_record(
                query.meta,
                decision.letter,
                decision.probs,
                decision.confidence,
                decision.letter_mass,
                greedy_token=self.engine.tokenizer.decode([int(greedy[row])]),
            )
            replies.append(Reply(decision.letter, record))
        return replies

    def _loglik_prompt(self, query: Query) -> VisualPrompt:
        if query.options is None or (self.loglik_context == "question" and query.question is None):
            raise ValueError(
                f"loglik mode needs the options' class names and the bare question; {query.where()} lacks them"
            )
        text = query.question if self.loglik_context == "question" else query.prompt
        return VisualPrompt(tuple(query.images), text)

    def _loglik_batch(self, queries: Sequence[Query]) -> list[Reply]:
        prompts = [self._loglik_prompt(query) for query in queries]
        scores = self.engine.batch_option_scores(
            prompts, [query.options for query in queries], cfg_weight=self.cfg_weight
        )
        return [self._loglik_reply(query, question) for query, question in zip(queries, scores)]

    def _loglik(self, query: Query) -> Reply:
        scores = self.engine.option_scores(
            self._loglik_prompt(query),
            query.options,
            cfg_weight=self.cfg_weight,
            chunk=self.loglik_chunk,
            reuse_prefix=self.loglik_reuse,
        )
        return self._loglik_reply(query, scores)

    def _loglik_reply(self, query: Query, scores) -> Reply:
        record = loglik_record(query.meta, query.options, scores, self.loglik_norm, self.cfg_weight)
        return Reply(record["pred"], record)


def _with_correct(record: dict) -> dict:
    if "answer" in record:
        record["correct"] = record["pred"] == record["answer"]
    return record


class DecisionLog:
    """Appends decision records as JSONL, one file per key (e.g. per task); earlier records are never lost.

    A rerun appends after the earlier runs' records (with the answer store, the questions it computes,
    and the stored questions' records the log lacks: :meth:`complete`); readers take the last record
    per (task, doc_id) when a question appears twice.
    """

    def __init__(self, folder: str | Path | None, prefix: str) -> None:
        self.folder = Path(folder) if folder else None
        self.prefix = re.sub(r"[^A-Za-z0-9._-]+", "_", prefix).strip("_") or "model"

    def path(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{self.prefix}_{re.sub(r'[^A-Za-z0-9._-]+', '_', key)}.jsonl"

    def logged(self, key: str) -> set:
        """The ``doc_id`` of every readable record already in ``key``'s file (a torn or garbled line is skipped)."""
        path = self.path(key)
        found: set = set()
        if path is None or not path.is_file():
            return found
        with path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "doc_id" in record:
                    found.add(record["doc_id"])
        return found

    def complete(self, records: Sequence[dict]) -> int:
        """Write the records (grouped by their ``task``) whose ``doc_id`` the log lacks; returns how many.

        A resume calls this with the answer store's records, so a kill between the store write and the
        log write loses no decision record.
        """
        by_task: dict[str, list[dict]] = {}
        for record in records:
            by_task.setdefault(str(record.get("task", "all")), []).append(record)
        written = 0
        for task, task_records in by_task.items():
            logged = self.logged(task)
            missing = [record for record in task_records if record.get("doc_id") not in logged]
            self.write(task, missing)
            written += len(missing)
        return written

    def write(self, key: str, records: Sequence[dict]) -> None:
        path = self.path(key)
        if path is None or not records:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def build_answerer(pretrained: str, settings: TransformersSettings) -> Answerer:
    """Load ``pretrained`` on the transformers engine and wrap it in an :class:`Answerer`, as ``settings`` say."""
    engine = HFVisionLanguageModel(pretrained, **settings.part("engine"))
    return Answerer(engine, **settings.part("answerer"))
