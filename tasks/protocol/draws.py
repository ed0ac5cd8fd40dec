"""The multiple-choice question for one sample: a pure function of its inputs.

Every toolkit (lmms-eval tasks, VLMEvalKit TSVs, CLIP baselines) calls :func:`build_question`,
so an MLLM and a CLIP model answer byte-identical questions. Randomness comes from SHA-256 of a
canonical string, never from a global RNG, Python's ``hash()`` or a library's generator, so the
result is the same on every machine, process and library version.

Derivation (version ``clsbench-v1``), for dataset key ``d``, sample key ``k``, seed ``s``:

* ``stream(purpose)`` is the byte sequence ``SHA256(f"clsbench-v1|{d}|{k}|{s}|{purpose}|{i}")``
  for ``i = 0, 1, 2, ...`` concatenated; it is read as big-endian unsigned 64-bit words.
* ``uniform(n)`` takes the next word ``w`` and returns ``w % n``, rejecting words
  ``>= 2**64 - (2**64 % n)`` so that every value is exactly equally likely.
* the wording index is ``uniform(n_wordings)`` on ``stream("wording")``;
* the right answer's position is ``uniform(n)`` on ``stream("position")``;
* the wrong classes come from a Fisher-Yates shuffle of the other classes (ascending class
  indices without the label), drawn on ``stream("negatives")``: step ``i`` swaps entry ``i``
  with entry ``i + uniform(n_classes - 1 - i)`` and yields the new entry ``i``. A yielded class
  whose name was already shown (the right class's or an earlier wrong one's) is passed over, so
  class lists that repeat a name (OpenAI's ImageNet names have two "missile" and two
  "sunglasses" classes) never give two options the same text. The first ``n - 1`` kept are used,
  with ``n = min(n_options, number of distinct names)``.
* options = wrong classes in draw order, with the right class inserted at its position.

Because each purpose has its own stream, the wrong classes of a 4-option question are the first
three wrong classes of the 26-option question for the same sample (nested ablations), and the
wording does not change with the option count.

Hard negatives (``ranked_negatives``, read from a negatives file, see :mod:`.negatives`) replace
only the shuffle: the wrong classes are the first ``n - 1`` entries of the sample's ranked list,
skipping the right class and names already shown. Wording and position are drawn as above.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from clsbench.tasks.runtime.errors import BadSettingError

DERIVATION_VERSION = "clsbench-v1"
LETTERS = string.ascii_uppercase
MAX_OPTIONS = len(LETTERS)
_TWO_64 = 1 << 64


@dataclass(frozen=True)
class Question:
    """One sample's question: class indices of the options (A first) and which one is right."""

    options: tuple[int, ...]
    answer_position: int
    wording_index: int

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer_position]

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.options)]


def _words(prefix: str) -> Iterator[int]:
    """Endless big-endian uint64 words from SHA-256 in counter mode."""
    counter = 0
    while True:
        digest = hashlib.sha256(f"{prefix}|{counter}".encode()).digest()
        for offset in range(0, 32, 8):
            yield int.from_bytes(digest[offset : offset + 8], "big")
        counter += 1


def _uniform(words: Iterator[int], n: int) -> int:
    """An exactly uniform integer in [0, n), by rejection sampling."""
    limit = _TWO_64 - (_TWO_64 % n)
    for word in words:
        if word < limit:
            return word % n
    raise AssertionError("unreachable: the word stream is endless")


def _stream(dataset_key: str, sample_key: str, seed: int, purpose: str) -> Iterator[int]:
    return _words(f"{DERIVATION_VERSION}|{dataset_key}|{sample_key}|{seed}|{purpose}")


def _shuffled_others(dataset_key: str, sample_key: str, seed: int, label: int, n_classes: int) -> Iterator[int]:
    """All classes but ``label`` in a seeded Fisher-Yates order, produced lazily.

    A sparse shuffle: only swapped positions are stored, so taking 25 of 1000 classes costs about
    25 steps, not 1000.
    """
    pool_size = n_classes - 1
    swapped: dict[int, int] = {}
    words = _stream(dataset_key, sample_key, seed, "negatives")
    for i in range(pool_size):
        j = i + _uniform(words, pool_size - i)
        value = swapped.get(j, j)
        swapped[j] = swapped.get(i, i)
        yield value if value < label else value + 1  # skip the right class


def first_distinct(candidates: Iterable[int], label: int, classnames: Sequence[str], count: int) -> list[int]:
    """The first ``count`` candidates whose names differ from the right class's and from each other."""
    shown = {classnames[label]}
    drawn: list[int] = []
    for cls in candidates:
        if len(drawn) == count:
            break
        if not 0 <= cls < len(classnames):
            raise ValueError(f"wrong class {cls} is outside the {len(classnames)} classes")
        if classnames[cls] not in shown:
            shown.add(classnames[cls])
            drawn.append(cls)
    if len(drawn) < count:
        raise ValueError(f"only {len(drawn)} wrong classes with distinct names are available, {count} are needed")
    return drawn


def draw_negatives(
    dataset_key: str, sample_key: str, seed: int, label: int, classnames: Sequence[str], count: int
) -> list[int]:
    """The first ``count`` classes, distinct by name, of a seeded shuffle of all classes but ``label``."""
    return first_distinct(
        _shuffled_others(dataset_key, sample_key, seed, label, len(classnames)), label, classnames, count
    )


def build_question(
    dataset_key: str,
    sample_key: str,
    label: int,
    classnames: Sequence[str],
    *,
    seed: int = 0,
    n_options: int = MAX_OPTIONS,
    n_wordings: int = 10,
    ranked_negatives: Sequence[int] | None = None,
) -> Question:
    """The options (class indices), right letter and wording for one sample (see the module docstring).

    Args:
        dataset_key: the registry key; part of every hash, so datasets never share draws.
        sample_key: the row's key (its index in the pinned split, as a string).
        label: the right class index.
        classnames: the class names shown; a name already shown is skipped, so no two options read alike.
        seed: the question seed (0 is the paper's protocol).
        n_options: 2..26 (fewer when the dataset has fewer distinct names).
        n_wordings: how many question wordings the dataset has.
        ranked_negatives: hard negatives in rank order (text-similar, clip-hard) instead of a shuffle.

    Returns:
        The :class:`Question`: option class indices (A first), the answer letter and the wording index.
    """
    if not 2 <= n_options <= MAX_OPTIONS:
        raise BadSettingError(f"n_options must be in 2..{MAX_OPTIONS}, got {n_options}")
    if seed < 0:
        raise BadSettingError(f"seed must be 0 or more, got {seed}")
    if sample_key.startswith("-") and sample_key[1:].isdigit():
        raise ValueError(f"sample key {sample_key!r} of {dataset_key!r}: row indices are 0 or more")
    if not 0 <= label < len(classnames):
        raise ValueError(
            f"sample {sample_key!r} of {dataset_key!r}: label {label} is outside the {len(classnames)} classes"
        )
    n = min(n_options, len(set(classnames)))
    wording_index = _uniform(_stream(dataset_key, sample_key, seed, "wording"), n_wordings)
    position = _uniform(_stream(dataset_key, sample_key, seed, "position"), n)
    if ranked_negatives is None:
        options = draw_negatives(dataset_key, sample_key, seed, label, classnames, n - 1)
    else:
        options = first_distinct(ranked_negatives, label, classnames, n - 1)
    options.insert(position, label)
    return Question(options=tuple(options), answer_position=position, wording_index=wording_index)
