"""Turning next-token logits and continuation log-likelihoods into an option, toolkit-agnostic.

Two decision rules, both pure functions of tensors so they are tested without a model:

* **Letter scoring** (``mode=score``): the next-token logits after the prompt, restricted to the
  option letters' token ids. A letter may have several ids (``"A"``, ``"▁A"``, ``"ĠA"``); its
  logit is the *max* over them, so whenever greedy generation's first token is an option letter,
  the scored letter is the same one (greedy takes the max over the whole vocabulary).
* **Option ranking** (``mode=loglik``, the probabilistic inference of *Why are Visually-Grounded
  Language Models Bad at Image Classification?*): each option's class name is scored by its
  log-likelihood given image and question, summed over its tokens (``sum``) or averaged
  (``mean``). With a classifier-free-guidance weight ``w`` the image's contribution is amplified:
  ``guided = cond + w * (cond - uncond)`` where ``uncond`` is the same text without the image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from clsbench.tasks.protocol.draws import LETTERS

Norm = Literal["sum", "mean"]
NORMS: tuple[Norm, ...] = ("sum", "mean")


def letter_token_ids(tokenizer, letters: str = LETTERS) -> dict[str, tuple[int, ...]]:
    """Every single token that decodes to ``letter`` (ignoring surrounding spaces), per letter.

    Looks up the spellings tokenizers use at the start of an answer (``A``, SentencePiece ``▁A``,
    byte-level BPE ``ĠA``) and the first token of ``encode("A")`` / ``encode(" A")``; a candidate
    counts only if it decodes to exactly the letter, so a byte-level tokenizer's bare space token
    is never taken for a letter.
    """
    vocab = tokenizer.get_vocab()
    found: dict[str, tuple[int, ...]] = {}
    for letter in letters:
        candidates = {vocab[form] for form in (letter, f"\u2581{letter}", f"\u0120{letter}") if form in vocab}
        for text in (letter, f" {letter}"):
            ids = tokenizer.encode(text, add_special_tokens=False)
            if ids:
                candidates.add(ids[0])
        kept = tuple(sorted(i for i in candidates if tokenizer.decode([i]).strip() == letter))
        if not kept:
            raise ValueError(f"the tokenizer has no single token for the option letter {letter!r}")
        found[letter] = kept
    return found


@dataclass(frozen=True)
class LetterDecision:
    """The chosen letter and the distribution it came from (for confidence and calibration)."""

    letter: str
    probs: dict[str, float]  # softmax over the option letters only; sums to 1
    letter_mass: float  # full-vocabulary probability of all option-letter tokens: how much the model "wanted" a letter

    @property
    def confidence(self) -> float:
        return self.probs[self.letter]


def decide_letter(logits: torch.Tensor, letter_ids: Mapping[str, Sequence[int]], letters: str) -> LetterDecision:
    """Argmax over the option letters of one row of next-token logits (shape ``[vocab]``)."""
    logits = logits.float()
    per_letter = torch.stack([logits[list(letter_ids[letter])].max() for letter in letters])
    probs = torch.softmax(per_letter, dim=0)
    all_ids = sorted({i for letter in letters for i in letter_ids[letter]})
    mass = torch.softmax(logits, dim=0)[all_ids].sum()
    best = int(torch.argmax(per_letter))
    return LetterDecision(
        letter=letters[best],
        probs={letter: float(p) for letter, p in zip(letters, probs)},
        letter_mass=float(mass),
    )


@dataclass(frozen=True)
class OptionScore:
    """Log-likelihood of one option's class name as the answer."""

    logprob: float  # sum over the name's tokens, given image and question
    n_tokens: int
    uncond_logprob: float | None = None  # the same without the image (only with a guidance weight)

    def guided(self, cfg_weight: float) -> float:
        if cfg_weight == 0.0:
            return self.logprob
        if self.uncond_logprob is None:
            raise ValueError("a guidance weight needs the unconditional log-likelihood")
        return self.logprob + cfg_weight * (self.logprob - self.uncond_logprob)

    def value(self, norm: Norm, cfg_weight: float = 0.0) -> float:
        total = self.guided(cfg_weight)
        return total if norm == "sum" else total / self.n_tokens


def rank_options(scores: Sequence[OptionScore], norm: Norm, cfg_weight: float = 0.0) -> int:
    """Index of the best option (the first on exact ties, like ``argmax``)."""
    if norm not in NORMS:
        raise ValueError(f"loglik_norm must be one of {NORMS}, got {norm!r}")
    values = [score.value(norm, cfg_weight) for score in scores]
    return max(range(len(values)), key=lambda index: (values[index], -index))


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool | int], bins: int = 10) -> float:
    """ECE with equal-width confidence bins: the mean |accuracy - confidence| weighted by bin size."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct differ in length")
    if not confidences:
        return math.nan
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if (low < c <= high) or (b == 0 and c == 0.0)]
        if members:
            accuracy = sum(bool(correct[i]) for i in members) / len(members)
            confidence = sum(confidences[i] for i in members) / len(members)
            total += len(members) * abs(accuracy - confidence)
    return total / len(confidences)
