"""The model args every adapter takes, parsed and checked once: ``clsbench_hf``, ``clsbench_vllm``, ``ClsbenchVLM``.

Each adapter used to declare its own copy (defaults, the log folder, what turns logging off), and the copies
drifted: ``log_dir=off`` was off in ``clsbench_hf`` but a folder named ``off`` elsewhere. Now each builds a
:class:`ModelSettings` (``clsbench_vllm``) or :class:`TransformersSettings` (the two adapters on the transformers
engine) from its keyword arguments, so one name means one thing everywhere. Which fields change an answer
(and so belong in the answer store's fingerprint) and where each goes (the engine, the answerer, the adapter)
is said once, on the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args

from clsbench.models.engine.scoring import NORMS

Mode = Literal["generate", "score", "loglik"]
MODES: tuple[Mode, ...] = get_args(Mode)
LoglikContext = Literal["question", "prompt"]
LOGLIK_CONTEXTS: tuple[LoglikContext, ...] = get_args(LoglikContext)

DEFAULT_LOG_DIR = "clsbench_model_logs"  # decision logs, and the answer store's default home (``answers/``)
DEFAULT_MAX_NEW_TOKENS = 16  # a reply's token limit when neither the model args nor the request set one
OFF = ("", "none", "false", "off")  # what turns a folder setting (log_dir, answer_store) off, in any case


def is_off(value) -> bool:
    """Whether a folder setting is turned off (``None`` or one of :data:`OFF`, any case)."""
    return value is None or value is False or str(value).strip().lower() in OFF


def _setting(default, goes_to: str, changes_answers: bool = False):
    """A field: ``goes_to`` is ``engine`` (the transformers engine), ``answerer`` or ``adapter``; a setting that
    ``changes_answers`` is in the answer store's fingerprint, so answers made under one value are never reused
    under another."""
    return field(default=default, metadata={"goes_to": goes_to, "changes_answers": changes_answers})


@dataclass(frozen=True)
class ModelSettings:
    """The settings every adapter accepts, with one meaning each."""

    mode: Mode = _setting("generate", "answerer")
    max_new_tokens: int | None = _setting(None, "answerer", True)  # None: the request's, else 16
    loglik_norm: str = _setting("sum", "answerer", True)
    cfg_weight: float = _setting(0.0, "answerer", True)
    loglik_context: LoglikContext = _setting("question", "answerer", True)
    system_prompt: str | None = _setting(None, "engine", True)
    chat_template: str | None = _setting(None, "engine")  # fingerprinted by the template's digest
    trust_remote_code: bool = _setting(False, "engine")
    log_dir: str | None = _setting(DEFAULT_LOG_DIR, "adapter")  # None: no decision log

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.loglik_norm not in NORMS:
            raise ValueError(f"loglik_norm must be one of {NORMS}, got {self.loglik_norm!r}")
        if self.loglik_context not in LOGLIK_CONTEXTS:
            raise ValueError(f"loglik_context must be one of {LOGLIK_CONTEXTS}, got {self.loglik_context!r}")
        object.__setattr__(self, "cfg_weight", float(self.cfg_weight))
        if self.max_new_tokens is not None:
            object.__setattr__(self, "max_new_tokens", int(self.max_new_tokens))
        object.__setattr__(self, "log_dir", None if is_off(self.log_dir) else str(self.log_dir))

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def split(cls, args: dict) -> tuple[ModelSettings, dict]:
        """These settings from ``args`` (model args as the toolkit passed them), and the rest, the adapter's own."""
        ours = {key: value for key, value in args.items() if key in cls.names()}
        return cls(**ours), {key: value for key, value in args.items() if key not in ours}

    def part(self, goes_to: str) -> dict:
        """The fields that go to ``goes_to`` (``engine``, ``answerer``, ``adapter``), as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["goes_to"] == goes_to}

    def fingerprint(self) -> dict:
        """The settings that change an answer (the answer store refuses answers made under others)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["changes_answers"]}

    def reply_limit(self, requested: int | None = None) -> int:
        """A reply's token limit: the model args', else the request's, else :data:`DEFAULT_MAX_NEW_TOKENS`."""
        return self.max_new_tokens or (int(requested) if requested else DEFAULT_MAX_NEW_TOKENS)

    def answer_store_folder(self, answer_store: str | None = "auto") -> Path | None:
        """Where the answer store lives: given, or ``auto``: ``$CLSBENCH_ANSWER_STORE``, else
        ``<log_dir>/answers`` (``<DEFAULT_LOG_DIR>/answers`` when the log is off); None when turned off."""
        if is_off(answer_store):
            return None
        if answer_store != "auto":
            return Path(answer_store)
        return Path(os.environ.get("CLSBENCH_ANSWER_STORE") or Path(self.log_dir or DEFAULT_LOG_DIR) / "answers")

    def replace(self, **changes) -> ModelSettings:
        return replace(self, **changes)


def _flag(value) -> bool:
    """A boolean model arg as lmms-eval or ``k=v`` strings pass it (``true``/``false``, ``1``/``0``, ``none``)."""
    return not is_off(value) and str(value).strip().lower() != "0"


@dataclass(frozen=True)
class TransformersSettings(ModelSettings):
    """The settings of the adapters on the transformers engine (``clsbench_hf``, VLMEvalKit's ``ClsbenchVLM``)."""

    device: str | None = _setting(None, "engine")
    dtype: str = _setting("auto", "engine")
    device_map: str | None = _setting(None, "engine")
    revision: str | None = _setting(None, "engine")
    # numerics: another attention kernel, a compiled forward or another loglik path can move a near-tie
    attn_implementation: str | None = _setting(None, "engine", True)
    compile: bool | str = _setting(False, "engine", True)
    loglik_chunk: int = _setting(32, "answerer")
    loglik_reuse: bool = _setting(True, "answerer", True)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "loglik_reuse", _flag(self.loglik_reuse))
        object.__setattr__(self, "loglik_chunk", int(self.loglik_chunk))
