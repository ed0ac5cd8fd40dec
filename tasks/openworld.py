"""Free-form answers mapped to classes ('MLLMs as image classifiers'): open- and closed-world tasks.

A reply is first matched exactly to a class name (after normalising case, punctuation and a
leading article); replies that match none are "out of list" and, for the mapped score, assigned to
the class whose name embedding is nearest to the reply's (a sentence encoder: ``$CLSBENCH_TEXT_ENCODER``,
else :data:`clsbench.tasks.negatives.DEFAULT_TEXT_ENCODER`). Reported: strict accuracy (exact
matches only), mapped accuracy (exact, else nearest) and the out-of-list rate.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import cache

from .negatives import DEFAULT_TEXT_ENCODER

MAX_CLOSED_WORLD_CLASSES = 256  # listing more class names than this does not fit a typical context
OPEN_INSTRUCTION = "Answer with the name of the class only."
CLOSED_INSTRUCTION = "Answer with exactly one of these class names, and nothing else:"
_ARTICLE = re.compile(r"^(?:a|an|the)\s+")


def normalise_name(text: str) -> str:
    text = re.sub(r"[*`\"'“”‘’]", "", text or "").strip().casefold()
    text = " ".join(re.sub(r"[.!?,;:]+$", "", text).split())
    return _ARTICLE.sub("", text)


def exact_class(reply: str | None, classnames: Sequence[str]) -> int | None:
    """The class whose normalised name equals the normalised reply, when exactly one does."""
    wanted = normalise_name(reply or "")
    hits = [index for index, name in enumerate(classnames) if normalise_name(name) == wanted]
    return hits[0] if len(hits) == 1 else None


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


def closed_world_prompt(question: str, classnames: Sequence[str]) -> str:
    return f"{question} {CLOSED_INSTRUCTION} {'; '.join(classnames)}."


def mapped_predictions(records: Sequence[dict], classnames: Sequence[str], encoder: str | None = None) -> list[int]:
    """Exact class where there is one, else the nearest class by embedding, for every record."""
    missing = [i for i, record in enumerate(records) if record["exact"] is None]
    nearest = dict(zip(missing, nearest_classes([records[i]["reply"] for i in missing], classnames, encoder)))
    return [record["exact"] if record["exact"] is not None else nearest[i] for i, record in enumerate(records)]
