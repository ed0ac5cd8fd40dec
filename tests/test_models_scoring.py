"""Decision rules without a model: letter scoring, option ranking (sum / mean / guidance), calibration, helpers."""

from __future__ import annotations

import math

import pytest
import torch

from clsbench.models.engine.hf_vlm import cut_at_stop, resolve_dtype
from clsbench.models.engine.scoring import (
    OptionScore,
    decide_letter,
    expected_calibration_error,
    letter_token_ids,
    rank_options,
)
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import format_prompt


def test_letter_ids_of_the_byte_level_tokenizer_are_single_tokens(tiny_llava):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llava)
    ids = letter_token_ids(tokenizer)
    assert list(ids) == list(LETTERS)
    for letter, found in ids.items():
        assert len(found) == 1  # the bare space token " " is never taken for a letter
        assert tokenizer.decode(list(found)) == letter
    assert len({i for found in ids.values() for i in found}) == 26


def test_letter_ids_collect_every_spelling_and_reject_others():
    vocab = {"A": 10, "\u2581A": 11, "B": 12, "\u2581B": 13, "\u2581": 14, "AB": 15}

    class SentencePieceLike:  # "A" and "▁A" both exist, " A" encodes as "▁A"
        def get_vocab(self):
            return dict(vocab)

        def encode(self, text, add_special_tokens=False):
            return [vocab["\u2581" + text.strip()]] if text.startswith(" ") else [vocab[text]]

        def decode(self, ids):
            inverse = {v: k for k, v in vocab.items()}
            return "".join(inverse[i] for i in ids).replace("\u2581", " ")

    assert letter_token_ids(SentencePieceLike(), "AB") == {"A": (10, 11), "B": (12, 13)}


def test_letter_score_takes_the_max_over_spellings_so_it_agrees_with_greedy():
    # B's second spelling is the vocabulary argmax; A has two medium spellings whose *sum* of
    # probabilities beats B's. Greedy picks B, so scoring must too (max, not logsumexp).
    logits = torch.full((8,), -10.0)
    logits[[1, 2]] = 2.0  # A: ids 1 and 2
    logits[4] = 2.5  # B: id 4 (ids 3 and 4)
    decision = decide_letter(logits, {"A": (1, 2), "B": (3, 4), "C": (5,)}, "ABC")
    assert int(torch.argmax(logits)) == 4 and decision.letter == "B"
    assert sum(decision.probs.values()) == pytest.approx(1.0)
    assert decision.confidence == max(decision.probs.values())
    expected = torch.softmax(torch.tensor([2.0, 2.5, -10.0]), 0)  # each letter's best spelling
    assert [decision.probs[letter] for letter in "ABC"] == pytest.approx(expected.tolist(), rel=1e-5)
    full = torch.softmax(logits, 0)
    assert decision.letter_mass == pytest.approx(float(full[[1, 2, 3, 4, 5]].sum()), rel=1e-5)


def test_letter_score_only_considers_the_questions_letters():
    logits = torch.zeros(30)
    logits[7] = 9.0  # "D" is the best letter overall, but the question has only A-C
    ids = {letter: (i,) for i, letter in enumerate(LETTERS[:4], start=4)}
    assert decide_letter(logits, ids, "ABC").letter in "ABC"
    assert decide_letter(logits, ids, "ABCD").letter == "D"


def test_sum_and_mean_rank_differently_when_names_differ_in_length():
    long_right = OptionScore(logprob=-8.0, n_tokens=8)  # -1 per token
    short_wrong = OptionScore(logprob=-5.0, n_tokens=2)  # -2.5 per token, but fewer tokens
    assert rank_options([long_right, short_wrong], "sum") == 1
    assert rank_options([long_right, short_wrong], "mean") == 0


def test_guidance_amplifies_what_the_image_adds():
    # Option 0 is likely with or without the image (a language prior); option 1 only with it.
    prior = OptionScore(logprob=-2.0, n_tokens=1, uncond_logprob=-1.5)
    visual = OptionScore(logprob=-2.5, n_tokens=1, uncond_logprob=-6.0)
    assert rank_options([prior, visual], "sum", cfg_weight=0.0) == 0
    assert rank_options([prior, visual], "sum", cfg_weight=1.0) == 1
    assert visual.guided(1.0) == pytest.approx(-2.5 + (-2.5 + 6.0))
    with pytest.raises(ValueError, match="unconditional"):
        OptionScore(logprob=-1.0, n_tokens=1).guided(0.5)
    with pytest.raises(ValueError, match="loglik_norm"):
        rank_options([prior], "max")


def test_ties_go_to_the_first_option():
    same = OptionScore(logprob=-3.0, n_tokens=3)
    assert rank_options([same, same, same], "mean") == 0


def test_expected_calibration_error():
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9, 0.9], [0, 0]) == pytest.approx(0.9)
    assert expected_calibration_error([0.75, 0.25], [1, 0]) == pytest.approx(0.25)
    assert math.isnan(expected_calibration_error([], []))


def test_score_mode_reads_the_options_from_the_prompt_with_the_protocols_inverse():
    """A query without options gets its letters from ``prompt_parts`` (the inverse of ``format_prompt``) and is
    refused, naming it, when the prompt has no option lines in the protocol's layout."""
    from clsbench.models.engine.answering import Answerer, Query

    answerer = Answerer(engine=None, mode="score")
    assert answerer._letters(Query(images=(), prompt=format_prompt("What is this?", ["cat", "dog", "fox"]))) == "ABC"
    assert answerer._letters(Query(images=(), prompt="Question?\nA. cat\nC. fox")) == "A"  # the run from A
    with pytest.raises(ValueError, match="task t, doc_id 3 has neither an options list"):
        answerer._letters(Query(images=(), prompt="no options here", meta={"task": "t", "doc_id": 3}))


def test_stop_strings_and_dtypes():
    assert cut_at_stop("B. fox\n\nbecause", ["\n\n"]) == "B. fox"
    assert cut_at_stop("B", ["", "\n\n"]) == "B"
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")
