"""Turn a model's free-text reply into one option letter, or None when it cannot be read.

Written for 26 options, where generic extractors fail (see NOTES): there is no fallback letter
(a failed parse is None, never "Z"), and a capital only counts in an answer position, so the
pronoun in "I think it is C" is not option I. Accepted replies (markdown ``*``/`` ` `` ignored):

* a letter: ``C``, ``C.``, ``C)``, ``(C)``, ``[C]``
* a letter and more text after ``.``, ``:``, ``)`` or a line break: ``C. red fox``, ``(C) red fox``
* the same after an answer phrase: ``The answer is C``, ``Answer: C``, ``The correct answer is (C).``
* exactly one option's class name, case-insensitive, trailing period allowed: ``Red fox.``

Unparseable (None): letters outside the question's options, lower-case letters, two letters
(``A or B``, ``AB``), a letter whose trailing text is exactly another option's class name,
refusals and empty replies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .options import LETTERS

_PHRASE = r"(?i:(?:the\s+)?(?:correct\s+|final\s+|right\s+|best\s+)?(?:answer|option|choice)\s*(?:is\s*:?|:)\s*)"
_LETTER = r"(?:\((?P<paren>[A-Z])\)|\[(?P<bracket>[A-Z])\]|(?P<bare>[A-Z])(?![A-Za-z0-9]))"
_REPLY = re.compile(
    rf"^{_PHRASE}?{_LETTER}"
    r"(?:\s*[.:)]?\s*$|(?P<sep>\s*[.:)]\s*|\s*\n\s*|(?<=[)\]])\s+)(?P<rest>.+))",
    re.DOTALL,
)


def _normalise(text: str) -> str:
    return " ".join(text.strip().rstrip(".!").split()).casefold()


def parse_answer(reply: str | None, option_names: Sequence[str]) -> str | None:
    """The option letter a reply chooses among ``option_names`` (A first), or None."""
    if not reply:
        return None
    text = re.sub(r"[*`]", "", reply).strip()
    letters = LETTERS[: len(option_names)]
    names = [_normalise(name) for name in option_names]

    match = _REPLY.match(text)
    if match:
        letter = match.group("paren") or match.group("bracket") or match.group("bare")
        if letter not in letters:
            return None
        rest = _normalise(match.group("rest") or "")
        if rest and rest != names[letters.index(letter)] and rest in names:
            return None  # "C. tench" where tench is option A: the reply contradicts itself
        return letter

    wanted = _normalise(text)
    hits = [letter for letter, name in zip(letters, names) if name == wanted]
    return hits[0] if len(hits) == 1 else None
