"""Samples become questions, questions become prompts, replies become scores.

Toolkit-agnostic: the lmms-eval hooks (``cls_mcq/utils.py``), the VLMEvalKit export and the CLIP
baselines all call these functions, so every toolkit asks and scores the same questions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clsbench.tasks.protocol.draws import LETTERS, MAX_OPTIONS, build_question
from clsbench.tasks.protocol.parsing import parse_answer
from clsbench.tasks.protocol.registry import DatasetSpec, get_dataset
from clsbench.tasks.runtime.errors import ClsbenchError

DEFAULT_SEED = 0


INSTRUCTION = "Answer with the option's letter from the given choices directly."


class SampleError(ClsbenchError, ValueError):
    """One sample is unusable (bad label, unreadable image); the message names it."""


@dataclass(frozen=True)
class McqSample:
    """Everything a toolkit needs to ask one question and score the reply."""

    dataset: str
    sample_key: str
    label: int
    question: str
    options: tuple[str, ...]
    answer: str  # the right letter
    option_labels: tuple[int, ...] = ()  # class index of each option, A first

    def as_doc(self) -> dict:
        return {
            "dataset": self.dataset,
            "sample_key": self.sample_key,
            "label": self.label,
            "question": self.question,
            "options": list(self.options),
            "answer": self.answer,
            "option_labels": list(self.option_labels),
        }


def check_label(dataset: str, sample_key: str, label: object, n_classes: int) -> None:
    """The one label check of every route (MLLM tasks, VLMEvalKit, CLIP): a class index, else a SampleError."""
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < n_classes:
        raise SampleError(
            f"{dataset} sample {sample_key}: label {label!r} is outside the class list (0..{n_classes - 1})"
        )


def make_sample(
    dataset: str,
    sample_key: str,
    label: int,
    classnames: Sequence[str],
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    ranked_negatives: Sequence[int] | None = None,
    question: str | None = None,
    wordings: Sequence[str] | None = None,
) -> McqSample:
    """The question for one sample (options from :func:`clsbench.tasks.protocol.draws.build_question`).

    Args:
        dataset: the registry key.
        sample_key: the row's key.
        label: the right class index (checked by :func:`check_label`).
        classnames: the class names shown.
        seed, n_options, ranked_negatives: as for ``build_question``.
        question: replaces the drawn wording (the 5-way protocol asks every sample the same question).
        wordings: the dataset's ten question wordings (its spec's ``questions``); looked up by key when not given.

    Returns:
        The :class:`McqSample`: question, option names (A first), answer letter and option class indices.
    """
    check_label(dataset, sample_key, label, len(classnames))
    wording = question
    drawn = build_question(
        dataset, sample_key, label, classnames, seed=seed, n_options=n_options, ranked_negatives=ranked_negatives
    )
    return McqSample(
        dataset=dataset,
        sample_key=sample_key,
        label=label,
        question=wording if wording is not None else (wordings or get_dataset(dataset).questions)[drawn.wording_index],
        options=tuple(classnames[index] for index in drawn.options),
        answer=drawn.answer_letter,
        option_labels=drawn.options,
    )


def make_samples(
    dataset: str | DatasetSpec,
    labels: Iterable[int],
    classnames: Sequence[str],
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    negatives=None,  # a data.negatives.Negatives: anything with for_sample(sample_key, label) -> ranked classes
    question: str | None = None,
) -> list[McqSample]:
    """Questions for a whole split; the sample key of row ``i`` is ``str(i)``. ``dataset``: the spec, or its key
    (looked up once for the split, not once a sample)."""
    spec = get_dataset(dataset) if isinstance(dataset, str) else dataset  # a spec passed down: no lookup
    samples = []
    for index, label in enumerate(labels):
        ranked = negatives.for_sample(str(index), label) if negatives is not None and label is not None else None
        samples.append(
            make_sample(
                spec.key,
                str(index),
                label,
                classnames,
                seed=seed,
                n_options=n_options,
                ranked_negatives=ranked,
                question=question,
                wordings=spec.questions,
            )
        )
    return samples


# Where the instruction goes. P1 section 3.2 prints the MCQ prompt as "<question>\n Answer with the option's
# letter from the given choices directly.\n A. ...\n B. ..." (question and instruction on separate lines; the
# space after each printed "\n" is typesetting); P1 section 5.1 prints the text-only question with the
# instruction on the question's line ("... Can you tell me what object it describes? Answer with ...\n A. ...").
MCQ_SEPARATOR = "\n"
TEXTONLY_SEPARATOR = " "


def format_prompt(
    question: str,
    options: Sequence[str],
    pre_prompt: str = "",
    instruction: str = INSTRUCTION,
    post_prompt: str = "",
    separator: str = MCQ_SEPARATOR,
) -> str:
    """The paper's prompt: the question, the instruction on its own line, then one ``A. class`` line per option.

    ``separator`` joins question and instruction: a line break (P1 section 3.2, the 26-option MCQ; the default)
    or a space (:data:`TEXTONLY_SEPARATOR`, P1 section 5.1's text-only question).
    """
    head = f"{pre_prompt}{question}"
    if instruction:
        head = f"{head}{separator}{instruction}"
    lines = [head.strip()]
    lines += [f"{letter}. {name}" for letter, name in zip(LETTERS, options)]
    return "\n".join(lines) + post_prompt


def prompt_parts(prompt: str, instruction: str = INSTRUCTION) -> tuple[str, tuple[str, ...]] | None:
    """The inverse of :func:`format_prompt`: ``(question, options)`` read from a prompt, or None without option lines.

    A model wrapper learns the options from the request's own prompt (lmms-eval's contract: a model
    never reads the task's documents). Options are the last run of ``A. ...``, ``B. ...`` lines in
    letter order; the question is the text before them, without the instruction sentence (on its own line, as
    :func:`format_prompt` writes the MCQ prompt, or on the question's line, as the text-only prompt has it).

    Args:
        prompt: the text a toolkit puts in front of the model.
        instruction: the instruction sentence to strip from the question (the paper's by default).

    Returns:
        ``(question, option names)``, or None when the prompt has no ``A. ...`` line.
    """
    lines = prompt.split("\n")
    end = max((i for i, line in enumerate(lines) if line.startswith("A. ")), default=None)
    if end is None:
        return None
    options = []
    for line in lines[end:]:
        letter = LETTERS[len(options)] if len(options) < len(LETTERS) else None
        if letter is None or not line.startswith(f"{letter}. "):
            break
        options.append(line[3:])
    head = "\n".join(lines[:end]).strip()
    if instruction and head.endswith(instruction):
        head = head[: -len(instruction)].rstrip()
    return head, tuple(options)


def score_reply(reply: str | None, options: Sequence[str], answer: str) -> dict:
    """Per-sample record: the parsed letter (None if unparseable), and whether it is right."""
    parsed = parse_answer(reply, options)
    return {"parsed": parsed, "answer": answer, "correct": int(parsed == answer), "unparseable": int(parsed is None)}
