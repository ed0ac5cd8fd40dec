"""What a VLMEvalKit MCQ row means to clsbench: its options, the paper's prompt, its score.

None of this needs VLMEvalKit: rows are what pandas reads from a TSV or a prediction file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.questions import INSTRUCTION, format_prompt, score_reply


def _missing(value) -> bool:
    """None or NaN: how pandas hands back an empty TSV / xlsx cell."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def row_options(row) -> list[str]:
    """Option class names of a TSV / prediction row (``A``.. columns that are present and not empty)."""
    options = []
    for letter in LETTERS:
        value = row.get(letter) if hasattr(row, "get") else None
        if _missing(value):
            break
        options.append(str(value))
    return options


def score_rows(rows: Iterable) -> list[dict]:
    """Per-row scores of predictions with our parser: ``parsed``, ``hit``, ``unparseable``."""
    records = []
    for row in rows:
        prediction = row.get("prediction")
        text = "" if _missing(prediction) else str(prediction)
        record = score_reply(text, row_options(row), str(row["answer"]))
        records.append(
            {"parsed": record["parsed"] or "", "hit": record["correct"], "unparseable": record["unparseable"]}
        )
    return records


def prompt_message(row, image_paths: Sequence[str]) -> list[dict]:
    """VLMEvalKit's message for a row: the images, then the paper's prompt, and nothing else.

    Model wrappers read the options and the question back from the prompt text
    (:func:`clsbench.tasks.protocol.questions.prompt_parts`), as any VLMEvalKit model would.
    """
    text = format_prompt(str(row["question"]), row_options(row), instruction=INSTRUCTION)
    return [*({"type": "image", "value": path} for path in image_paths), {"type": "text", "value": text}]
