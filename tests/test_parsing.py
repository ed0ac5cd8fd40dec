"""The 26-letter answer parser, including the traps generic extractors fall into."""

import pytest

from clsbench.tasks.parsing import parse_answer

OPTIONS = ["tench", "goldfish", "red fox", "great white shark", "tiger shark", "hammerhead shark", "electric ray",
           "stingray", "rooster", "hen", "ostrich", "brambling", "goldfinch", "house finch", "junco",
           "indigo bunting", "American robin", "bulbul", "jay", "magpie", "chickadee", "American dipper",
           "kite (bird of prey)", "bald eagle", "vulture", "great grey owl"]

CASES = [
    # plain letters
    ("C", "C"), ("C.", "C"), ("(C)", "C"), ("C)", "C"), ("[C]", "C"), ("  C  ", "C"), ("**C**", "C"),
    ("Z", "Z"), ("A", "A"), ("I", "I"),
    # letter with its class or more text
    ("C. red fox", "C"), ("(C) red fox", "C"), ("C: red fox", "C"), ("C. Red Fox.", "C"),
    ("C\nThe animal has orange fur.", "C"), ("I. rooster", "I"), ("I. hen", None),
    # answer phrases
    ("The answer is C", "C"), ("The answer is C.", "C"), ("Answer: C", "C"), ("answer: (C)", "C"),
    ("The correct answer is (C) red fox.", "C"), ("Answer: **C**", "C"), ("The best option is Z.", "Z"),
    # exact class name
    ("red fox", "C"), ("Red fox.", "C"), ("GREAT GREY OWL", "Z"), ("kite (bird of prey)", "W"),
    # unparseable: the pronoun I, two letters, contradictions, lower case, refusals, empty
    ("I think it is C", None), ("I am not sure.", None), ("I", "I"),
    ("A or B", None), ("A, B", None), ("AB", None), ("A and C", None),
    ("C. tench", None),  # the text names option A: the reply contradicts itself
    ("c", None), ("the answer is c", None), ("a fox", None), ("fox", None),
    ("", None), ("   ", None), (None, None),
    ("I'm sorry, I cannot identify this image.", None), ("This is a photo of an animal.", None),
    ("Answer:", None), ("The answer is", None),
]


@pytest.mark.parametrize("reply,expected", CASES)
def test_parse_answer_table(reply, expected):
    assert parse_answer(reply, OPTIONS) == expected


def test_table_is_large_enough():
    assert len(CASES) >= 30


def test_letter_outside_the_options_is_unparseable():
    assert parse_answer("Z", OPTIONS[:10]) is None
    assert parse_answer("J", OPTIONS[:10]) == "J"
    assert parse_answer("K.", OPTIONS[:10]) is None


def test_no_sentinel_letter_for_garbage():
    # VLMEvalKit's can_infer returns "Z" on failure, which scores as right whenever Z is the answer.
    for reply in ["\x17\x8f q9", "???", "zzz", "....", "ZZ"]:
        assert parse_answer(reply, OPTIONS) is None


def test_class_name_repeated_in_options_is_ambiguous():
    assert parse_answer("missile", ["missile", "tench", "missile"]) is None
