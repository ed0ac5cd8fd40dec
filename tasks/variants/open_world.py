"""Free-form answers: open- and closed-world tasks with the papers' own prompts and success rules.

Prompts (verbatim): :data:`OPEN_PROMPT` and :data:`CLOSED_PROMPT` are P1's Appendix B.1 ("Revisiting
MLLMs"), :data:`P2_CLOSED_PROMPT` is P2's section 2.3 ("Why are Visually-Grounded Language Models Bad
at Image Classification?").

A reply is first matched exactly to a class name (after normalising case, punctuation and a
leading article); replies that match none are "out of list" and, for the mapped score, assigned to
the class whose name embedding is nearest to the reply's (a sentence encoder: ``$CLSBENCH_TEXT_ENCODER``,
else :data:`clsbench.tasks.data.negatives.DEFAULT_TEXT_ENCODER`; P4's CW+ protocol). Reported: strict
accuracy (exact matches only), mapped accuracy (exact, else nearest), contains accuracy (the right
class name appears in the reply: P2's success rule) and the out-of-list rate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import cache

from clsbench.tasks.data.negatives import DEFAULT_TEXT_ENCODER
from clsbench.tasks.protocol.parsing import match_name

MAX_CLOSED_WORLD_CLASSES = 256  # listing more class names than this does not fit a typical context
# P1 Appendix B.1, open world (no class list).
OPEN_PROMPT = "Please identify the main object in the given image and output the category name."
# P1 Appendix B.1, closed world: every class name, as a bracketed list on its own line.
CLOSED_PROMPT = (
    "Please identify the main object in the given image and select the category name from the following list."
    "\n[{names}]"
)
# P2 section 2.3, closed world; success = the right class name is contained in the reply.
P2_CLOSED_PROMPT = "What type of object is in this photo? Choose one from {names}"


def exact_class(reply: str | None, classnames: Sequence[str]) -> int | None:
    """The class the reply names, by the MCQ parser's name rules (``clsbench.tasks.protocol.parsing.match_name``)."""
    return match_name(reply, classnames)


def text_encoder_name() -> str:
    return os.environ.get("CLSBENCH_TEXT_ENCODER") or DEFAULT_TEXT_ENCODER


@cache
def _encoder(name: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(name, device="cpu")


def nearest_classes(replies: Sequence[str], classnames: Sequence[str], encoder: str | None = None) -> list[int]:
    """For each reply, the class with the most similar name embedding (ties: lowest index)."""
    import torch

    if not replies:
        return []
    model = _encoder(encoder or text_encoder_name())
    with torch.no_grad():
        texts = model.encode([r or "" for r in replies], convert_to_tensor=True, normalize_embeddings=True).float()
        names = model.encode(list(classnames), convert_to_tensor=True, normalize_embeddings=True).float()
    return torch.argmax(texts @ names.T, dim=1).tolist()


def closed_world_prompt(classnames: Sequence[str]) -> str:
    """P1's closed-world prompt with every class name listed."""
    return CLOSED_PROMPT.format(names=", ".join(classnames))


def p2_closed_world_prompt(classnames: Sequence[str]) -> str:
    """P2's closed-world prompt with every class name listed."""
    return P2_CLOSED_PROMPT.format(names=", ".join(classnames))


def contains_class(reply: str | None, class_name: str) -> bool:
    """P2's success rule: the class name occurs in the reply (case, punctuation and spacing aside)."""

    def simple(text: str) -> str:
        return " " + " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split()) + " "

    return simple(class_name) in simple(reply or "")


def mapped_predictions(records: Sequence[dict], classnames: Sequence[str], encoder: str | None = None) -> list[int]:
    """Exact class where there is one, else the nearest class by embedding, for every record."""
    missing = [i for i, record in enumerate(records) if record["exact"] is None]
    nearest = dict(zip(missing, nearest_classes([records[i]["reply"] for i in missing], classnames, encoder)))
    return [record["exact"] if record["exact"] is not None else nearest[i] for i, record in enumerate(records)]
