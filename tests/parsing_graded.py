"""The blind-graded reply tables (tests/data/parsing/): loading and scoring, shared by the tests and README figures.

The rows were written and graded by RULES.md without reading the parser, over 16 questions drawn with
``make_sample`` (questions.json). ``graded_heldout.jsonl`` is a random quarter kept out of sight while the
parser was written and scored once at the end; ``graded_dev.jsonl`` is the rest.
Run ``python tests/parsing_graded.py`` to print the rates of clsbench and lmms-eval's extractor on both parts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).parent / "data" / "parsing"


def questions() -> dict[str, dict]:
    return {q["qid"]: q for q in json.loads((DATA / "questions.json").read_text(encoding="utf-8"))}


def graded(part: str) -> list[dict]:
    """The rows of one part ("dev" or "heldout"), each with its question's options."""
    by_id = questions()
    rows = []
    for number, line in enumerate((DATA / f"graded_{part}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            row["options"] = by_id[row["qid"]]["options"]
            row["line"] = number
            rows.append(row)
    return rows


def score(parse: Callable[[str, list[str]], str | None], rows: list[dict]) -> dict:
    """Wrong letters (a letter the grader did not give), needless None (grader has a letter), and correct rows."""
    wrong, needless, correct = [], [], 0
    by_pattern: Counter = Counter()
    for row in rows:
        got = parse(row["reply"], row["options"])
        if got == row["expected"]:
            correct += 1
        elif got is None:
            needless.append(row)
            by_pattern[row["pattern"]] += 1
        else:
            wrong.append((row, got))
    letters = sum(1 for row in rows if row["expected"] is not None)
    return {
        "rows": len(rows),
        "graded_letters": letters,
        "wrong": wrong,
        "needless": needless,
        "correct": correct,
        "needless_by_pattern": dict(by_pattern),
    }


def lmms_eval_parse(reply: str, options: list[str]) -> str | None:
    """lmms-eval's shared extractor with all of the question's letters (its "" is None)."""
    from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer

    from clsbench.tasks.protocol.draws import LETTERS

    return extract_mcq_answer(reply, list(LETTERS[: len(options)])) or None


if __name__ == "__main__":
    from clsbench.tasks.protocol.parsing import parse_answer

    for name, parse in (("clsbench", parse_answer), ("lmms-eval extract_mcq_answer", lmms_eval_parse)):
        for part in ("dev", "heldout"):
            result = score(parse, graded(part))
            print(
                f"{name:30s} {part:8s} rows={result['rows']} letters={result['graded_letters']} "
                f"wrong={len(result['wrong'])} needless_none={len(result['needless'])} correct={result['correct']}"
            )
