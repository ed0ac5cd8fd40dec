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
* the right answer's position is ``uniform(n)`` on ``stream("position")``, with
  ``n = min(n_options, n_classes)``;
* the ``n - 1`` wrong classes are the first ``n - 1`` entries of a Fisher-Yates shuffle of the
  other classes (ascending class indices without the label), drawn on ``stream("negatives")``:
  step ``i`` swaps entry ``i`` with entry ``i + uniform(n_classes - 1 - i)``.
* options = wrong classes in draw order, with the right class inserted at its position.

Because each purpose has its own stream, the wrong classes of a 4-option question are the first
three wrong classes of the 26-option question for the same sample (nested ablations), and the
wording does not change with the option count.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterator
from dataclasses import dataclass

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


def draw_negatives(dataset_key: str, sample_key: str, seed: int, label: int, n_classes: int, count: int) -> list[int]:
    """The first ``count`` classes of a seeded shuffle of all classes except ``label``.

    A sparse Fisher-Yates shuffle: only swapped positions are stored, so drawing 25 of 1000
    classes costs 25 steps, not 1000.
    """
    pool_size = n_classes - 1
    if not 0 <= count <= pool_size:
        raise ValueError(f"cannot draw {count} wrong classes from {pool_size}")
    swapped: dict[int, int] = {}

    def at(position: int) -> int:
        value = swapped.get(position, position)
        return value if value < label else value + 1  # skip the right class

    words = _stream(dataset_key, sample_key, seed, "negatives")
    drawn = []
    for i in range(count):
        j = i + _uniform(words, pool_size - i)
        drawn.append(at(j))
        swapped[j] = swapped.get(i, i)
    return drawn


def build_question(
    dataset_key: str,
    sample_key: str,
    label: int,
    n_classes: int,
    *,
    seed: int = 0,
    n_options: int = MAX_OPTIONS,
    n_wordings: int = 10,
) -> Question:
    """The options, right letter and wording for one sample (see the module docstring)."""
    if not 2 <= n_options <= MAX_OPTIONS:
        raise ValueError(f"n_options must be in 2..{MAX_OPTIONS}, got {n_options}")
    if not 0 <= label < n_classes:
        raise ValueError(f"sample {sample_key!r} of {dataset_key!r}: label {label} is outside the {n_classes} classes")
    n = min(n_options, n_classes)
    wording_index = _uniform(_stream(dataset_key, sample_key, seed, "wording"), n_wordings)
    position = _uniform(_stream(dataset_key, sample_key, seed, "position"), n)
    options = draw_negatives(dataset_key, sample_key, seed, label, n_classes, n - 1)
    options.insert(position, label)
    return Question(options=tuple(options), answer_position=position, wording_index=wording_index)
