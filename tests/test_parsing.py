"""The 26-letter answer parser: a graded table of reply forms, a generated sweep, and outside references.

Each row is a reply form MLLMs produce for the paper's prompt ("Answer with the option's letter from
the given choices directly."), written from the forms, not copied from any model's output, and the
letter a careful grader gives (None: a grader could not be sure). The parser may say None where a
grader has a letter (counted as needless), but must never give a letter the grader would not.
"""

from __future__ import annotations

import parsing_graded
import pytest
from parsing_sweep import sweep

from clsbench.tasks.protocol.parsing import parse_answer
from clsbench.tasks.protocol.questions import make_sample
from clsbench.tasks.protocol.registry import get_dataset

OPTIONS = [
    "tench",
    "goldfish",
    "red fox",
    "great white shark",
    "tiger shark",
    "hammerhead shark",
    "electric ray",
    "stingray",
    "rooster",
    "hen",
    "ostrich",
    "brambling",
    "goldfinch",
    "house finch",
    "junco",
    "indigo bunting",
    "American robin",
    "bulbul",
    "jay",
    "magpie",
    "chickadee",
    "American dipper",
    "kite (bird of prey)",
    "bald eagle",
    "vulture",
    "great grey owl",
]
# A tench, B goldfish, C red fox, ... I rooster, J hen, ... W kite (bird of prey), ... Z great grey owl

GRADED: list[tuple[str | None, str | None]] = [
    # --- Bare letters, as instruction-following 7B models answer "directly" (LLaVA-1.5/1.6, Qwen-VL, LLaVA-OV).
    ("C", "C"),
    ("C.", "C"),
    ("(C)", "C"),
    ("C)", "C"),
    ("[C]", "C"),
    ("  C  ", "C"),
    ("C\n", "C"),
    ("\nC", "C"),
    ("A", "A"),
    ("A.", "A"),
    ("Z", "Z"),
    ("Z.", "Z"),
    ("I", "I"),
    ("I.", "I"),
    ("(I)", "I"),
    ("M", "M"),
    ("C!", "C"),
    ("C .", "C"),
    ("C:", "C"),
    ("C,", "C"),
    ("C;", "C"),
    ("C</s>", "C"),  # rule 7: leaked end tokens are read through
    ("C.\n\n", "C"),
    # lower case, as small models and some chat templates emit
    ("c", "C"),
    ("c.", "C"),
    ("c)", "C"),
    ("(c)", "C"),
    ("z", "Z"),
    ("a", "A"),
    ("i", "I"),
    # --- Letter and the option's text, as InternVL2 and MiniCPM-V often echo the option line.
    ("C. red fox", "C"),
    ("C. Red fox", "C"),
    ("C. Red Fox.", "C"),
    ("C) red fox", "C"),
    ("(C) red fox", "C"),
    ("C: red fox", "C"),
    ("C - red fox", "C"),
    ("C – red fox", "C"),
    ("C (red fox)", "C"),
    ("C red fox", "C"),
    ("c. red fox", "C"),
    ("c) red fox", "C"),
    ("C. red foxes", "C"),
    ("C. a red fox", "C"),
    ("C. The red fox", "C"),
    ("W. kite (bird of prey)", "W"),
    ("W. kite", "W"),
    ("I. rooster", "I"),
    ("I) rooster", "I"),
    ("Q. American robin", "Q"),
    ("Q. american robin", "Q"),
    ("V. American dipper.", "V"),
    ("Z. great grey owl", "Z"),
    ("Z. great gray owl", "Z"),
    ("D. great white shark", "D"),
    ("D. great-white shark", "D"),
    ("J. hen", "J"),
    ("F. hammerhead shark", "F"),
    ("F. hammerhead", "F"),
    # --- Answer phrases, as API models (GPT-4o, Claude, Gemini) and Phi-3-Vision write them.
    ("The answer is C", "C"),
    ("The answer is C.", "C"),
    ("The answer is (C).", "C"),
    ("The answer is: C", "C"),
    ("The answer is C. red fox", "C"),
    ("The answer is C) red fox.", "C"),
    ("Answer: C", "C"),
    ("Answer: (C)", "C"),
    ("Answer: C. red fox", "C"),
    ("answer: c", "C"),
    ("ANSWER: C", "C"),
    ("Answer:C", "C"),
    ("**Answer:** C", "C"),
    ("**Answer: C**", "C"),
    ("Answer: **C**", "C"),
    ("**C**", "C"),
    ("**C. red fox**", "C"),
    ("`C`", "C"),
    ("The correct answer is C.", "C"),
    ("The correct answer is (C) red fox.", "C"),
    ("The correct option is C.", "C"),
    ("The best answer is C", "C"),
    ("The best option is Z.", "Z"),
    ("Final answer: C", "C"),
    ("Final Answer: C", "C"),
    ("The final answer is C.", "C"),
    ("My answer is C.", "C"),
    ("Option C", "C"),
    ("Option C.", "C"),
    ("Option C: red fox", "C"),
    ("Option (C)", "C"),
    ("The answer is option C", "C"),
    ("The answer is option C.", "C"),
    ("Correct answer: C", "C"),
    ("Choice C", "C"),
    ("The right answer is C.", "C"),
    ("The answer would be C.", "C"),
    ("C is the answer.", "C"),
    ("C is correct.", "C"),
    ("C is the correct answer.", "C"),
    ("C is the correct option", "C"),
    ("It's C.", "C"),
    ("It's C", "C"),
    ("It is C.", "C"),
    ("This is C.", "C"),
    ("That's C.", "C"),
    ("I think it's C.", "C"),
    ("I think it is C", "C"),
    ("I think the answer is C.", "C"),
    ("I believe it's C", "C"),
    ("I believe the answer is C.", "C"),
    ("I'd say C.", "C"),
    ("I would say C", "C"),
    ("I would say C.", "C"),
    ("I'll go with C.", "C"),
    ("I choose C.", "C"),
    ("So the answer is C.", "C"),
    ("The answer is c", "C"),
    ("The answer is C because the animal has orange fur.", "C"),
    ("Answer: C, the red fox.", "C"),
    ("The answer is C, red fox.", "C"),
    ("The answer is (C) because of the bushy tail.", "C"),
    # --- Letter first, then an explanation, as Phi-3-Vision and MiniCPM-V do when not held to one letter.
    ("C\nThe animal has orange fur.", "C"),
    ("C\n\nThe image shows a red fox in the snow.", "C"),
    ("C. The image shows a red fox standing in the snow.", "C"),
    ("C. red fox\nIt has orange fur and a bushy tail.", "C"),
    ("C) red fox - note the white-tipped tail.", "C"),
    ("C: The animal is a red fox.", "C"),
    ("C. This is a red fox, not a dog.", "C"),
    ("C. It is clearly a fox.", "C"),
    ("I. The bird is a rooster with a red comb.", "I"),
    ("A. tench, a freshwater fish", "A"),
    # --- Reasoning models and wrappers: think blocks, answer tags, LaTeX.
    ("<think>The fur is orange.</think>\nC", "C"),
    ("<think>Could be A or C.</think>\nC", "C"),
    ("<think>\nLet me look.\n</think>\n\nThe answer is C.", "C"),
    ("<answer>C</answer>", "C"),
    ("<answer> C </answer>", "C"),
    ("Reasoning: orange fur.\n<answer>C</answer>", "C"),
    ("\\boxed{C}", "C"),
    ("$\\boxed{C}$", "C"),
    ("The answer is $\\boxed{C}$.", "C"),
    ("\\boxed{\\text{C}}", "C"),
    ("<think>unfinished thoughts about C", None),
    ("<answer>C</answer><answer>D</answer>", None),
    # --- Quotes, punctuation, full-width and emoji.
    ("'C'", "C"),
    ('"C"', "C"),
    ("“C”", "C"),
    ("The answer is 'C'.", "C"),
    ("Ｃ", "C"),
    ("（Ｃ）", "C"),
    ("Ｃ．red fox", "C"),
    ("C 👍", "C"),
    ("C!!", "C"),
    ("C?", "C"),
    # --- Chinese answer phrases (Qwen-VL, InternVL, MiniCPM-V answering in Chinese).
    ("答案是C", "C"),
    ("答案是C。", "C"),
    ("答案：C", "C"),
    ("答案:C", "C"),
    ("答案是 C", "C"),
    ("选C", "C"),
    ("答案是（C）", "C"),
    # --- The class name instead of a letter (models that ignore the instruction; LLaVA in open-ended style).
    ("red fox", "C"),
    ("Red fox.", "C"),
    ("RED FOX", "C"),
    ("red foxes", "C"),
    ("Red foxes.", "C"),
    ("red-fox", "C"),
    ("A red fox.", "C"),
    ("a red fox", "C"),
    ("A red fox", "C"),
    ("The red fox", "C"),
    ("It's a red fox.", "C"),
    ("It is a red fox.", "C"),
    ("This is a red fox.", "C"),
    ("The image shows a red fox.", "C"),
    ("This looks like a red fox.", "C"),
    ("It looks like a red fox", "C"),
    ("Answer: red fox", "C"),
    ("The answer is red fox.", "C"),
    ("GREAT GREY OWL", "Z"),
    ("great grey owls", "Z"),
    ("kite (bird of prey)", "W"),
    ("Kite (bird of prey).", "W"),
    ("a rooster", "I"),
    ("A rooster.", "I"),
    ("An ostrich.", "K"),
    ("an ostrich", "K"),
    ("hens", "J"),
    ("Hen.", "J"),
    ("The image shows an American robin.", "Q"),
    ("american robin", "Q"),
    ("bald eagle", "X"),
    ("A bald eagle.", "X"),
    ("It's a junco.", "O"),
    ("goldfish", "B"),
    ("tench", "A"),
    # --- Conclusions after a description (API models asked to explain, MiniCPM-V's long form).
    ("The animal has orange fur and a bushy tail, so the answer is C.", "C"),
    ("It has a white-tipped tail. Therefore, the answer is C.", "C"),
    ("Looking at the ears and the snout, the correct answer is C.", "C"),  # rule 4: reasoning, then the answer
    ("The bird has a red comb and wattles, so the answer is I.", "I"),
    ("The image shows a canine with orange fur.\nAnswer: C", "C"),
    ("Orange fur, pointed ears.\nFinal answer: C", "C"),
    ("The tail is bushy. Thus the answer is (C).", "C"),
    ("It could be A or C, so the answer is C.", "C"),
    ("Option A is a fish and option C is a fox; the animal is a fox, so the answer is C.", "C"),  # rule 4
    ("The answer is A. Wait, no, so the answer is C.", "C"),  # rule 3: the last correction counts
    # --- Ambiguous, self-contradicting or echoed replies: a grader gives no letter.
    ("A or B", None),
    ("A, B", None),
    ("AB", None),
    ("A and C", None),
    ("C or D", None),
    ("C/D", None),
    ("C, D", None),
    ("C\nD", None),
    ("(C) or (D)", None),
    ("C. red fox, D. great white shark", None),
    ("C. red fox\nD. great white shark", None),
    ("A. tench\nB. goldfish\nC. red fox", None),
    ("C. tench", None),
    ("C. goldfish", None),
    ("C) tench", None),
    ("C. a tench", None),
    ("C. tenches", None),
    ("B. red fox", None),
    ("I. hen", None),
    ("H. Actually, looking again, it is C. red fox.", "C"),  # rule 3
    ("C. Actually, the answer is D.", "D"),  # rule 3
    ("C, no wait, D.", "D"),  # rule 3
    ("C or maybe D", None),
    ("Either C or D.", None),
    ("The answer is C or D.", None),
    ("Answer: C\nAnswer: D", None),
    ("Q: What is in the image?\nA: C", None),
    ("I.e. a red fox", "C"),  # rule 1: the reply names the red fox ("I.e." is no letter)
    ("red fox or tench", None),
    ("Either a red fox or a tench.", None),
    ("CD", None),
    ("C.D.", None),
    ("Not C.", None),
    ("Not sure, maybe C or D.", None),
    # --- The pronoun I, refusals and empty replies (VLMEvalKit's can_infer reads some of these as a letter).
    ("I am not sure.", None),
    ("I don't know.", None),
    ("I cannot determine the answer.", None),
    ("I'm sorry, I cannot identify this image.", None),
    ("I need more information.", None),
    ("I think so.", None),
    ("This is a photo of an animal.", None),
    ("It is an animal.", None),
    ("A dog.", None),
    ("a fox", "C"),  # rule 1: a unique partial name (only "red fox" is a fox)
    ("fox", "C"),  # rule 1
    ("The animal in the image.", None),
    ("Answer:", None),
    ("The answer is", None),
    ("", None),
    ("   ", None),
    (None, None),
    ("\x17\x8f q9", None),
    ("???", None),
    ("zzz", None),
    ("....", None),
    ("ZZ", None),
    ("None of the above.", None),
    ("N/A", None),
    ("Sorry, I can't help with that.", None),
    ("As an AI, I cannot see images.", None),
    # --- 0.4 rules (README "Answer parsing"): commitments, not first letters.
    # Rule 4: explanations, comparisons and negations around a stated answer.
    ("C. Unlike the tiger shark (E), it has orange fur.", "C"),
    ("C. Note the S-shaped curve of the tail.", "C"),
    ("Answer: C\nWhy not B: a goldfish is a fish.", "C"),
    ("It is not B; it is C.", "C"),
    ("The answer is C, not B.", "C"),
    ("B can be ruled out, so C.", "C"),
    ("This is a red fox rather than a tench.", "C"),
    # Rule 3: self-corrections; a correction into doubt is no answer.
    ("B? No, C.", "C"),
    ("B. Hmm, looking again at the ears, C.", "C"),
    ("B. Wait, I'm not sure any more.", None),
    # Rule 2 and the image's content: a letter contradicted by what the reply says the image shows.
    ("The answer is C. The animal in the photo is a tench.", None),
    ("The answer is C. The animal in the photo is a red fox.", "C"),
    ('{"answer": "C", "label": "goldfish"}', None),
    ('{"answer": "C", "label": "red fox"}', "C"),
    # Rule 5: an equal alternative is a hedge.
    ("C, but it could just as well be A.", None),
    ("Red fox (C) and tench (A) both fit.", None),
    # Rule 1: names, partials, modifiers and shared words.
    ("Foxes.", "C"),
    ("Great gray owls", "Z"),
    ("ray", None),  # electric ray and stingray are both rays
    ("Hammerhead", None),  # by design: a modifier alone of a lower-case name is None (as "spider" for "spider web")
    ("Hammerhead shark", "F"),
    ("electric", None),  # a modifier of "electric ray", not the ray
    ("A shark.", None),  # three sharks
    # Rule 7: wrappers and leaked tokens.
    ("C<|im_end|>", "C"),
    ("<|begin_of_box|>C<|end_of_box|>", "C"),
    ("| Letter | Name |\n|---|---|\n| C | red fox |", "C"),
    ("~~B~~ C", "C"),
    ("Antwort: C", "C"),
    ("La respuesta es la C.", "C"),
    ("正确答案是C。", "C"),
    # Rule 8: the article and the pronoun.
    ("Answer: A tench.", "A"),
    ("Answer: A red fox.", "C"),
    ("Answer: I cannot tell.", None),
    ("A: The animal is a red fox.", None),
]


@pytest.mark.parametrize("reply,expected", GRADED)
def test_graded_table(reply, expected):
    assert parse_answer(reply, OPTIONS) == expected


def test_table_is_large_and_has_no_wrong_letter(record_parser_stats):
    assert len(GRADED) >= 250
    wrong = [(r, e, g) for r, e in GRADED if (g := parse_answer(r, OPTIONS)) not in (e, None)]
    needless = sum(1 for r, e in GRADED if e is not None and parse_answer(r, OPTIONS) is None)
    record_parser_stats("graded table", len(GRADED), len(wrong), needless)
    assert wrong == []


def test_generated_sweep_gives_no_wrong_letter(record_parser_stats):
    wrong, needless, tried = sweep(parse_answer)
    record_parser_stats("generated sweep", tried, len(wrong), needless)
    assert tried > 20_000
    assert wrong == [], wrong[:10]
    assert needless <= tried // 1000


def test_the_sweep_has_teeth_against_lmms_evals_extractor(record_parser_stats):
    """lmms-eval's shared extractor, on the same sweep, gives wrong letters: the sweep can fail."""
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    from clsbench.tasks.protocol.draws import LETTERS

    def lmms(reply, options):
        return extract_mcq_answer(reply, list(LETTERS[: len(options)])) or None

    wrong, needless, tried = sweep(lmms, per_dataset=2)
    record_parser_stats("lmms-eval extract_mcq_answer (same sweep, fewer lists)", tried, len(wrong), needless)
    assert len(wrong) > 100


def test_letter_outside_the_options_is_unparseable():
    assert parse_answer("Z", OPTIONS[:10]) is None
    assert parse_answer("J", OPTIONS[:10]) == "J"
    assert parse_answer("K.", OPTIONS[:10]) is None
    assert parse_answer("The answer is K.", OPTIONS[:10]) is None


def test_no_sentinel_letter_for_garbage():
    # VLMEvalKit's can_infer returns "Z" on failure, which scores as right whenever Z is the answer.
    for reply in ["\x17\x8f q9", "???", "zzz", "....", "ZZ"]:
        assert parse_answer(reply, OPTIONS) is None


def test_class_name_repeated_in_options_is_ambiguous():
    assert parse_answer("missile", ["missile", "tench", "missile"]) is None


def test_a_name_that_looks_like_a_letter_wins_when_it_is_the_whole_reply():
    options = ["E. coli", "S. aureus", "tench"]
    assert parse_answer("E. coli", options) == "A"
    assert parse_answer("S. aureus", options) == "B"
    assert parse_answer("B", options) == "B"


# --- The blind-graded tables: written and graded by RULES.md by someone who did not read the parser.
@pytest.mark.parametrize("question", parsing_graded.questions().values(), ids=lambda q: q["qid"])
def test_graded_questions_are_the_protocols_own(question):
    names = get_dataset(question["dataset"]).names(question["name_set"])
    sample = make_sample(question["dataset"], question["sample_key"], question["label"], names)
    assert list(sample.options) == question["options"]
    assert sample.answer == question["answer"]
    assert sample.question == question["question"]


@pytest.mark.parametrize("part", ["dev", "heldout"])
def test_blind_graded_table(part, record_parser_stats):
    rows = parsing_graded.graded(part)
    result = parsing_graded.score(parse_answer, rows)
    record_parser_stats(
        f"blind-graded {part} ({result['graded_letters']} with a letter)",
        len(rows),
        len(result["wrong"]),
        len(result["needless"]),
    )
    assert len(rows) >= (300 if part == "dev" else 100)
    wrong = [(row["line"], row["reply"], row["expected"], got) for row, got in result["wrong"]]
    assert wrong == []
    assert len(result["needless"]) <= result["graded_letters"] // 10, [r["reply"] for r in result["needless"]]


def test_blind_graded_table_has_teeth_against_lmms_evals_extractor(record_parser_stats):
    """The same rows through lmms-eval's extractor give wrong letters: the table can fail a parser."""
    rows = parsing_graded.graded("dev") + parsing_graded.graded("heldout")
    result = parsing_graded.score(parsing_graded.lmms_eval_parse, rows)
    record_parser_stats(
        "lmms-eval extract_mcq_answer (blind-graded, both parts)",
        len(rows),
        len(result["wrong"]),
        len(result["needless"]),
    )
    assert len(result["wrong"]) > 20
