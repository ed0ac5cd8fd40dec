"""A generated sweep for the answer parser: many real option lists x many reply templates.

Each template says which letter a careful grader gives (the chosen option's letter, or None where
the reply is ambiguous). The parser may return None where the grader has a letter (a needless None,
counted and printed), but never a letter the template did not choose.
"""

from __future__ import annotations

from collections.abc import Iterator

from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import make_sample
from clsbench.tasks.protocol.registry import DATASETS

# (template, who the grader picks): "X" the chosen option, "Y" the other one, None ambiguous. {X}/{x} the chosen letter
# (upper/lower), {N} its name, {Y}/{M} another option's letter and name, {LIST} the echoed options.
TEMPLATES: tuple[tuple[str, str | None], ...] = (
    ("{X}", "X"),
    ("{X}.", "X"),
    ("({X})", "X"),
    ("[{X}]", "X"),
    ("{X})", "X"),
    ("{x}", "X"),
    ("{x}.", "X"),
    ("{X}. {N}", "X"),
    ("{X}) {N}", "X"),
    ("({X}) {N}", "X"),
    ("{X}: {N}", "X"),
    ("{X} - {N}", "X"),
    ("{X} ({N})", "X"),
    ("{X} {N}", "X"),
    ("{x}. {N}", "X"),
    ("{X}. {N}.", "X"),
    ("**{X}**", "X"),
    ("**{X}. {N}**", "X"),
    ("Answer: {X}", "X"),
    ("Answer: ({X})", "X"),
    ("The answer is {X}.", "X"),
    ("The answer is ({X}) {N}.", "X"),
    ("The correct answer is {X}. {N}", "X"),
    ("Option {X}", "X"),
    ("The answer is option {X}.", "X"),
    ("I think it's {X}.", "X"),
    ("I think the answer is {X}.", "X"),
    ("I believe the answer is {X}", "X"),
    ("I'd say {X}.", "X"),
    ("It is {X}.", "X"),
    ("{X} is the answer.", "X"),
    ("{X} is correct.", "X"),
    ("<answer>{X}</answer>", "X"),
    ("\\boxed{{{X}}}", "X"),
    ("答案是{X}", "X"),
    ("答案：{X}", "X"),
    ("'{X}'", "X"),
    ("{X}!", "X"),
    ("<think>Let me look at the image.</think>\n{X}", "X"),
    ("{X}\nThe image shows a {N}.", "X"),
    ("{N}", "X"),
    ("{N}.", "X"),
    ("It's a {N}.", "X"),
    ("The image shows a {N}.", "X"),
    ("a {N}", "X"),
    ("Answer: {N}", "X"),
    ("The object has the typical shape and colours, so the answer is {X}.", "X"),
    ("Looking closely at the picture.\nAnswer: {X}", "X"),
    # ambiguous or self-contradicting: a grader gives no letter
    ("{X} or {Y}", None),
    ("{X}\n{Y}", None),
    ("({X}) or ({Y})", None),
    ("{X}. {M}", None),
    ("{X}) {M}", None),
    ("{X}. {N}, {Y}. {M}", None),
    ("{LIST}", None),
    ("I am not sure.", None),
    ("I don't know.", None),
    ("Maybe {X} or {Y}.", None),
    ("{X}. Actually, looking again, it is {Y}. {M}.", "Y"),  # rule 3: the last correction counts
    ("Either {N} or {M}.", None),
    ("{X} and {Y}", None),
    ("{X}, {Y}", None),
    ("{X}{Y}", None),
    ("The answer is {X} or {Y}.", None),
    ("Answer: {X}\nAnswer: {Y}", None),
    ("I'm sorry, I can't tell what this is.", None),
    ("", None),
    ("The answer is {Y}, no wait, {X}.", "X"),
    ("{X}. {N}\n{Y}. {M}", None),
    ("Not {X}.", None),
)


def question_sets(per_dataset: int = 12) -> Iterator[tuple[str, ...]]:
    """Real option lists: the first questions of every dataset, in every class-name set."""
    for key, spec in DATASETS.items():
        for name_set in spec.name_sets:
            names = spec.names(name_set) or ("Eiffel Tower", "Colosseum", "Big Ben", "Taj Mahal", "Petra")
            for index in range(per_dataset):
                yield make_sample(key, str(index), (index * 37) % len(names), names).options


def sweep(parse, per_dataset: int = 12) -> tuple[list[tuple[str, str | None, str | None]], int, int]:
    """(wrong letters as (reply, expected, got), needless Nones, replies tried)."""
    wrong, needless, tried = [], 0, 0
    for options in question_sets(per_dataset):
        letters = LETTERS[: len(options)]
        for position in (0, len(options) // 2, len(options) - 1):
            other = (position + 1) % len(options)
            values = {
                "X": letters[position],
                "x": letters[position].lower(),
                "N": options[position],
                "Y": letters[other],
                "M": options[other],
                "LIST": "\n".join(f"{letter}. {name}" for letter, name in zip(letters, options)),
            }
            for template, pick in TEMPLATES:
                reply = template.format(**values)
                expected = {"X": letters[position], "Y": letters[other]}.get(pick)
                got = parse(reply, options)
                tried += 1
                if got != expected and got is not None:
                    wrong.append((reply, expected, got))
                elif got is None and expected is not None:
                    needless += 1
    return wrong, needless, tried
