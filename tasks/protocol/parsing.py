"""Turn a model's free-text reply into one option letter, or None when a careful grader could not be sure.

One parser for every toolkit (lmms-eval hooks, the VLMEvalKit dataset, report re-scoring). Written
for 26 options, where generic extractors give wrong letters (NOTES; lmms-eval's ``extract_mcq_answer``
and VLMEvalKit's ``can_infer`` both do): there is no fallback letter, and a letter counts only when
nothing after it contradicts it. The policy, in the order it is applied:

1. **Clean-up.** Unicode NFKC (full-width ``Ｂ`` -> ``B``), think blocks (``<think>...</think>``)
   dropped, ``<answer>X</answer>``, ``\\boxed{X}``, ``\\text{X}``, ``$X$`` unwrapped, markdown ``*`` ``#``
   and backticks removed, quotes around a letter removed, trailing punctuation and emoji removed.
2. **The reply is exactly one option's name** (and longer than one character): that option. Names
   are compared loosely: case, punctuation, ``-``/``_`` and spacing aside ("E. coli", "Red fox.").
3. **A letter at the start**, after any answer phrase (``Option``, ``The (correct) answer is``,
   ``Answer:``, ``I think / I believe / I'd say``, ``It's / It is / This is``, ``答案是``, ``答案：``):
   ``B``, ``(B)``, ``[B]``, ``B.`` / ``B:`` / ``B)`` / ``B,`` / ``B -`` followed by a space or the end
   (so ``I.e.`` is no letter). What follows must not contradict it: None when it starts with another
   option's name (``C. red fox`` where red fox is B), or contains another in-range option letter
   standing alone (``B\\nH``, ``(B) or (H)``, ``B. red fox, H. dhole``, ``answer is H``, ``or h``).
   After a bare letter with no answer phrase and only a space, what follows must be the letter's own
   name (``B red fox``, ``B (red fox)``) or an affirmation (``B is the answer``, ``B is correct``):
   so ``I am not sure`` and ``A or B`` are not letters. A lower-case letter counts alone, after an
   answer phrase, or followed by ``.``/``)`` and its own name (``b. red fox``).
4. **A class name with a short lead-in**: ``A red fox.``, ``It's a red fox``, ``The image shows red
   foxes``, ``Answer: red-fox`` (lead-in, article, plural ``-s``/``-es``, hyphens): exactly one option
   must match.
5. **One final conclusion** that ends the reply: ``..., so the answer is B.`` / a last line
   ``Answer: B``, when no other in-range letter is stated as an answer or an option before it.

Everything else is None (unparseable, counted wrong and reported as ``unparseable_rate``): refusals,
empty replies, two letters, letters beyond the question's options, the pronoun ``I`` in a sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from clsbench.tasks.protocol.draws import LETTERS

_QUOTES = "\"'`“”‘’«»"
# Phrases that may come before the answer, each optional, stripped in this order.
_LEAD = re.compile(
    r"^(?:(?:so|thus|therefore|hence|ok(?:ay)?|well)\s*,?\s+)?"
    r"(?:(?:i\s+think|i\s+believe|i\s*'d\s+say|i\s+would\s+say|i\s+guess|i\s+choose|i\s+pick|i\s+would\s+choose|"
    r"i\s*'ll\s+go\s+with|i\s+will\s+go\s+with|in\s+my\s+opinion|my\s+(?:final\s+)?answer\s+(?:is|would\s+be))"
    r"\s*[:,]?\s*(?:that\s+)?)?",
    re.IGNORECASE,
)
_IT_IS = re.compile(
    r"^(?:it\s*'s|it\s+is|this\s+is|that\s*'s|that\s+is|it\s+would\s+be|it\s+should\s+be)\s+", re.IGNORECASE
)
_ANSWER = re.compile(
    r"^(?:the\s+)?(?:(?:correct|final|right|best|most\s+likely|most\s+appropriate)\s+)?(?:answer|option|choice)"
    r"(?:\s+(?:is|would\s+be|should\s+be))?\s*(?::\s*)?(?:(?:option|choice)\s+)?",
    re.IGNORECASE,
)
_CHINESE = re.compile(r"^(?:答案\s*(?:是|为|:)|选择?|应该?选)\s*")
_AFFIRM = re.compile(
    r"^(?:is\s+(?:the\s+)?(?:(?:correct|right|best|final)\s+)?(?:answer|option|choice)|is\s+(?:correct|right))\b",
    re.IGNORECASE,
)
_SHAPE_LEAD = re.compile(  # lead-ins before a class name (step 4), after the answer phrases above
    r"^(?:(?:the|this|that)\s+(?:image|photo|picture|object|main\s+object)\s+(?:shows|is|contains|depicts)|"
    r"(?:this|it)\s+(?:looks|appears)\s+(?:like|to\s+be)|looks\s+like|this\s+appears\s+to\s+be|"
    r"the\s+(?:image|photo|picture)\s+is\s+of|a\s+photo\s+of|an\s+image\s+of|a\s+picture\s+of)\s+",
    re.IGNORECASE,
)
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
_CONCLUSION = re.compile(
    r"(?:\b(?:so|thus|therefore|hence)\s*,?\s*(?:the\s+)?(?:(?:correct|final|right|best)\s+)?(?:answer|option|choice)"
    r"\s+(?:is|would\s+be|should\s+be)|(?:^|\n)\s*(?:(?:the\s+)?(?:final|correct)\s+)?answer\s*(?:is\s*)?:)"
    r"\s*:?\s*(?:(?:option|choice)\s+)?\(?(?P<letter>[A-Za-z])\)?\s*$",
    re.IGNORECASE,
)


def _clean(reply: str) -> str:
    text = reply.replace("．", ". ").replace("：", ": ").replace("）", ") ")  # full-width marks carry no space
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"<think>.*?</think>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r"<think>.*", " ", text, flags=re.DOTALL | re.IGNORECASE)  # never closed: all thinking
    answers = re.findall(r"<answer>(.*?)</answer>", text, flags=re.DOTALL | re.IGNORECASE)
    if len(set(a.strip() for a in answers)) == 1:
        text = answers[0]
    for _ in range(2):
        text = re.sub(r"\\(?:boxed|text|textbf|mathrm)\{([^{}]*)\}", r"\1", text)
    text = text.replace("$", "").replace("’", "'").replace("‘", "'")
    text = re.sub(r"[*#`]", "", text)
    text = re.sub(rf"[{_QUOTES}]([A-Za-z])[{_QUOTES}]", r"\1", text)
    text = text.strip().strip(_QUOTES).strip()
    return re.sub(r"[^\w)\]]+$", "", text)  # trailing punctuation, emoji, spaces


def name_key(text: str) -> str:
    """Loose comparison key of a class name or reply: case, punctuation, ``-``/``_`` and spacing aside."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("'", "").replace("’", "")
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _name_forms(key: str) -> set[str]:
    """A name's key and its plural and singular forms."""
    forms = {key, key + "s", key + "es"}
    if key.endswith("es"):
        forms.add(key[:-2])
    if key.endswith("s"):
        forms.add(key[:-1])
    return forms


def _starting_option(text: str, keys: Sequence[str]) -> int | None:
    """The option whose name (or its plural) the text starts with, the longest such name winning."""
    body = name_key(_ARTICLE.sub("", text.strip()))
    best: tuple[int, int] | None = None
    for index, key in enumerate(keys):
        for form in _name_forms(key):
            if form and (body == form or body.startswith(form + " ")) and (best is None or len(form) > best[0]):
                best = (len(form), index)
    return None if best is None else best[1]


def _strip_phrases(text: str) -> tuple[str, bool]:
    """The text after any answer phrase at its start, and whether there was one."""
    start = text
    for pattern in (_LEAD, _IT_IS, _ANSWER, _CHINESE):
        text = pattern.sub("", text, count=1).lstrip()
    return text, text != start


def _contradicted(rest: str, letter: str, letters: str) -> bool:
    """Whether text after a letter names another in-range option letter as a choice."""
    others = "".join(other for other in letters if other != letter)
    if not others:
        return False
    if re.search(rf"[(\[]\s*[{others}{others.lower()}]\s*[)\]]", rest):
        return True
    for match in re.finditer(rf"(?<![A-Za-z0-9'])([{others}])(?![A-Za-z0-9])", rest):
        after = rest[match.end() :]
        if match.group(1) in "AI" and re.match(r"(?:\s+[a-z]|'[a-z])", after):
            continue  # the article "A red ..." or the pronoun "I think", "I'm"
        return True
    lower = others.lower()
    return bool(re.search(rf"(?i:\b(?:or|option|choice|answer\s+is|answer\s*:))\s+[{lower}](?![A-Za-z0-9])", rest))


def _letter_at_start(text: str, letters: str, keys: Sequence[str]) -> str | None | bool:
    """Step 3: the letter a reply starts with, None if contradicted, False if it does not start with a letter."""
    body, phrased = _strip_phrases(text)
    match = re.match(r"\((?P<paren>[A-Za-z])\)|\[(?P<bracket>[A-Za-z])\]|(?P<bare>[A-Za-z])(?![A-Za-z0-9])", body)
    if not match:
        return False
    raw = match.group("paren") or match.group("bracket") or match.group("bare")
    letter = raw.upper()
    rest = body[match.end() :]
    separator = re.match(r"\s*(?:[.:),]|\s[-–—]|-\s)(?=\s|$)|\s*\n|\s+|$", rest)
    if separator is None:
        return False  # "I.e.", "B-52": not a letter
    sep, rest = separator.group(0), rest[separator.end() :].strip()
    wrapped = bool(match.group("paren") or match.group("bracket"))
    if letter not in letters:
        return None
    own = keys[letters.index(letter)]
    starts = _starting_option(rest, keys) if rest else None
    if raw.islower() and not wrapped:
        if rest and not (sep.strip() in (".", ")") and starts == letters.index(letter)):
            return False  # "a red fox", "It's a red fox": the article, not option a
    elif rest and not (phrased or wrapped) and not sep.strip() and "\n" not in sep:
        # A bare letter and a space: only its own name or an affirmation may follow ("I am not sure" is no answer).
        own_name = starts == letters.index(letter) or re.match(rf"\(\s*{re.escape(own)}\s*\)", name_key(rest))
        if not own_name and not _AFFIRM.match(rest):
            if starts is not None and raw in "Aa":
                return False  # "A red fox": the article before a class name (step 4 decides)
            return None
    if starts is not None and starts != letters.index(letter):
        return None  # "C. red fox" where red fox is B
    after_name = rest
    if starts == letters.index(letter):
        after_name = re.sub(r"^\s*(?:a|an|the)\s+", "", rest, flags=re.IGNORECASE)[len(own) :]
    if _contradicted(after_name, letter, letters):
        return None
    return letter


def _name_with_lead_in(text: str, keys: Sequence[str]) -> int | None:
    """Step 4: a reply that is one option's name after a short lead-in and an article (plurals allowed)."""
    body, _ = _strip_phrases(text)
    body = _SHAPE_LEAD.sub("", body).strip()
    body = name_key(_ARTICLE.sub("", body))
    hits = {index for index, key in enumerate(keys) if body and body in _name_forms(key)}
    return hits.pop() if len(hits) == 1 else None


def _conclusion(text: str, letters: str) -> str | None:
    """Step 5: one final "so the answer is X" / "Answer: X" that ends the reply, with no rival before it."""
    match = _CONCLUSION.search(text)
    if not match:
        return None
    letter = match.group("letter").upper()
    if letter not in letters:
        return None
    before = text[: match.start()]
    others = "".join(other for other in letters if other != letter)
    rival = rf"(?:\b(?:answer\s+is|answer\s*:|option|choice)\s*\(?[{others}]\b|[(\[][{others}][)\]])"
    return None if re.search(rival, before, flags=re.IGNORECASE) else letter


def match_name(reply: str | None, names: Sequence[str]) -> int | None:
    """The one class a free-form reply names (steps 2 and 4 over any number of names), else None.

    Used by the open- and closed-world tasks, where there are no letters: "Red fox.", "It's a red
    fox", "red foxes" all name "red fox"; a reply matching two names, or none, is None.
    """
    text = _clean(str(reply or ""))
    if not text:
        return None
    keys = [name_key(name) for name in names]
    whole = name_key(text)
    if keys.count(whole) == 1:
        return keys.index(whole)
    return _name_with_lead_in(text, keys)


def parse_answer(reply: str | None, option_names: Sequence[str]) -> str | None:
    """The option letter a reply chooses among ``option_names`` (A first), or None (see the module docstring).

    Args:
        reply: the model's text, as the toolkit hands it over.
        option_names: the question's class names, A first (they let a reply name its class instead of a letter).

    Returns:
        ``"A"``..``"Z"`` within the question's options, or None when a careful grader could not be sure.
    """
    if not reply:
        return None
    text = _clean(str(reply))
    if not text:
        return None
    letters = LETTERS[: len(option_names)]
    keys = [name_key(name) for name in option_names]
    whole = name_key(text)
    exact = [index for index, key in enumerate(keys) if key == whole]
    if len(text) > 1 and len(exact) == 1 and keys.count(whole) == 1:
        return letters[exact[0]]
    letter = _letter_at_start(text, letters, keys)
    if letter is not False:
        if letter is not None or not re.match(r"^[Aa]\s", text):
            return letter
    index = _name_with_lead_in(text, keys)
    if index is not None:
        return letters[index]
    return _conclusion(text, letters) if letter is False else None
