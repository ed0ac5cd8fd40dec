"""A report's parts: a :class:`Record` per (model, protocol, dataset), merged into :class:`ModelResult` rows."""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from clsbench.tasks.data.loading import DataError, classnames_for
from clsbench.tasks.protocol.catalog import RANDOM
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.registry import DATASETS, DEFAULT_NAMES, dataset_for_name, paper_datasets
from clsbench.tasks.runtime.errors import ClsbenchError

DUPLICATE_SUFFIX = re.compile(r" \[\d+\]$")  # "missile [657]", as clsbench clip writes it
LEADERBOARD_FORMAT = "clsbench-leaderboard-v1"

MLLM, CLIP, REFERENCE = "MLLM", "CLIP", "REFERENCE"


KIND_ORDER = (REFERENCE, CLIP, MLLM)  # the paper's rows (with --reference paper), CLIP-style baselines, then MLLMs


class ReportError(ClsbenchError, ValueError):
    """A report input is unusable; the message says which and what to do."""


@dataclass(frozen=True)
class ClassScore:
    """One class's result; ``n`` and ``correct`` are None where a source gives only the accuracy."""

    accuracy: float
    n: int | None = None
    correct: int | None = None


@dataclass
class Record:
    """One model's result on one dataset under one protocol, read from one file."""

    model: str  # the model's display name (the row name adds the protocol)
    kind: str  # MLLM, CLIP or REFERENCE
    toolkit: str  # lmms-eval, vlmeval, clip, clip_benchmark or paper
    dataset: str  # registry key
    accuracy: float  # 0..1
    stamp: float  # when the result was produced
    source: Path
    per_class: dict[str, ClassScore] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # said only if this record makes it into the table
    model_id: str = ""  # normalised identity: Hub id (+ revision) or resolved local path, else the display name
    protocol: dict = field(default_factory=dict)  # everything that changes the questions or the answering
    n: int | None = None  # samples scored
    n_expected: int | None = None  # samples in the split (more than n: a --limit or crashed run)
    unparseable_rate: float | None = None
    stderr: float | None = None  # of the accuracy (lmms-eval's own when it reports one, else binomial)
    versions: dict = field(default_factory=dict)
    paper_row: str | None = None  # the paper's Table 2 row this model is

    @property
    def partial(self) -> bool:
        return self.n is not None and self.n_expected is not None and self.n < self.n_expected

    @property
    def full_size(self) -> int | None:
        """The paper's split size for this dataset (the registry's ``expected_size``, Table 1)."""
        spec = DATASETS.get(self.dataset)
        return spec.expected_size if spec is not None and self.kind != REFERENCE else None

    @property
    def split_subset(self) -> bool:
        """Whether the data copy scored has fewer rows than the paper's split (``clsbench demo``'s 8-row fixture
        copies, a ``prepare --limit`` copy): the cell is complete on its copy but not comparable with the paper."""
        full = self.full_size
        return self.n_expected is not None and full is not None and self.n_expected < full

    @property
    def row_key(self) -> tuple[str, str]:
        """A row is a (model, protocol); the toolkit is not part of it (the same model and protocol through
        lmms-eval and VLMEvalKit is one row, each cell saying which toolkit it came from)."""
        return (self.model_id or self.model, json.dumps(self.protocol, sort_keys=True))

    @property
    def row_name(self) -> str:
        label = protocol_label(self.kind, self.protocol)
        return f"{self.model} [{label}]" if label else self.model

    def interval(self) -> tuple[float, float] | None:
        """The 95 % Wilson interval of the accuracy, when the sample count is known."""
        if not self.n:
            return None
        z, p, n = 1.959964, self.accuracy, self.n
        centre, half = (
            (p + z * z / (2 * n)) / (1 + z * z / n),
            z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n),
        )
        return max(0.0, centre - half), min(1.0, centre + half)


# Protocol fields and their paper defaults; a row's label names only what differs.
DEFAULT_PROTOCOL = {
    "mode": "generate",
    "n_options": 26,
    "negatives": RANDOM,
    "seed": 0,
    "class_names": "paper",
    "prompt": "paper",
}


def protocol_label(kind: str, protocol: dict) -> str:
    """The compact protocol shown in a row name: ``score``, ``4 options``, ``clip mcq, single template``, ..."""
    if kind == CLIP:
        parts = [f"{protocol.get('toolkit_label', 'clip')} {protocol.get('mode') or 'mcq'}"]
        if protocol.get("templates") == "single":
            parts.append("single template")
    else:
        parts = [protocol["mode"]] if protocol.get("mode") not in (None, "generate") else []
        if protocol.get("mode") == "loglik":
            parts += [f"{protocol.get('loglik_norm', 'sum')}"] + (
                [f"cfg {protocol['cfg_weight']}"] if protocol.get("cfg_weight") else []
            )
    if protocol.get("seed") not in (None, 0):
        parts.append(f"seed {protocol['seed']}")
    if protocol.get("n_options") not in (None, MAX_OPTIONS):
        parts.append(f"{protocol['n_options']} options")
    if protocol.get("negatives") not in (None, RANDOM):
        parts.append(f"{protocol['negatives']} negatives")
    if protocol.get("class_names") not in (None, DEFAULT_NAMES):
        parts.append(f"{protocol['class_names']} names")
    if protocol.get("prompt") not in (None, "paper"):
        parts.append(f"prompt {protocol['prompt']}")
    return ", ".join(parts)


@dataclass
class ModelResult:
    """A table row: one model under one protocol, one record per dataset."""

    name: str
    kind: str
    toolkit: str
    datasets: dict[str, Record]
    conflicts: dict[str, list[Record]] = field(default_factory=dict)  # cells with two different complete results

    @property
    def missing(self) -> list[str]:
        return [spec.key for spec in paper_datasets() if spec.key not in self.datasets]

    def records(self) -> list[Record]:
        """This row's records in the paper's dataset order."""
        return [self.datasets[key] for key in DATASETS if key in self.datasets]


class ClassNames:
    """Label index -> class name, from the registry or (gldv2) the prepared copy; index text otherwise."""

    def __init__(self, data_dir: str | Path | None, notes: list[str]):
        self.data_dir = data_dir
        self.notes = notes
        self._cache: dict[str, tuple[str, ...] | None] = {}

    def names(self, key: str) -> tuple[str, ...] | None:
        """Display names in label order; a name the list holds twice gets `` [<label>]`` (ImageNet's "missile")."""
        if key not in self._cache:
            try:
                self._cache[key] = _disambiguate(classnames_for(key, self.data_dir))
            except DataError:
                self._cache[key] = None
        return self._cache[key]

    def label(self, key: str, index: int) -> str:
        names = self.names(key)
        if names is None:
            note = (
                f"{DATASETS[key].abbreviation}: class names unavailable (no prepared copy; pass --data-dir), "
                "per-class rows show class indices"
            )
            if note not in self.notes:
                self.notes.append(note)
        return names[index] if names is not None and 0 <= index < len(names) else f"class {index}"


def _disambiguate(names: tuple[str, ...]) -> tuple[str, ...]:
    counts = Counter(names)
    return tuple(f"{name} [{index}]" if counts[name] > 1 else name for index, name in enumerate(names))


def _normalise(name: str) -> str:
    """Class-name matching key: case, spacing and the `` [<label>]`` suffix do not matter."""
    return " ".join(DUPLICATE_SUFFIX.sub("", str(name)).split()).casefold()


def tally(pairs: Iterable[tuple[str, bool]]) -> dict[str, ClassScore]:
    """Per-class n, correct and accuracy from (class, correct) pairs."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, correct in pairs:
        counts[name][0] += 1
        counts[name][1] += int(bool(correct))
    return {name: ClassScore(right / n, n, right) for name, (n, right) in counts.items()}


def dataset_key(text: object) -> str | None:
    """A registry key from a key, a paper abbreviation, a VLMEvalKit name or a CLIP_benchmark name."""
    return dataset_for_name(text)


def is_number(text: object) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False
