"""Turn a model's free-text reply into one option letter, or None when a careful grader could not be sure.

One parser for every toolkit (lmms-eval hooks, the VLMEvalKit dataset, report re-scoring). Written
for 26 options, where generic extractors give wrong letters (lmms-eval's ``extract_mcq_answer`` and
VLMEvalKit's ``can_infer`` both do): there is no fallback letter. It reads the reply's
**commitment**, not the first letter it sees. The grading rules it implements (README "Answer parsing"):

1. The committed final answer counts: a letter within the question's range, or a class name that
   picks exactly one option (case, punctuation, spacing, plural, possessive, accents, one-letter
   spelling variants, unique partial names and a trailing category word such as "cat" aside).
   A name shared by several options picks none.
2. A letter followed by another option's name ("D. tiger cat" where tiger cat is F) is None; a
   letter followed by a paraphrase that names no option keeps the letter.
3. Self-corrections ("D... wait, actually F"): the answer after the last correction counts.
4. Reasoning, explanations and negations that mention or rule out other options do not cancel a
   clearly stated answer: a mention is not a commitment.
5. Hedges between options ("D or F") are None. 6. Letters beyond the question's options are None.
7. Think blocks with no answer after them are None; answer phrases in several languages, markdown,
   JSON, LaTeX, answer tags and leaked special tokens are read through.
8. "A" and "I" are the article / pronoun when what follows says so ("A tiger cat.", "I am not sure").

How: the reply is cleaned (step 7), then every **commitment** is collected with its position and
strength: an answer phrase and what it introduces (3), the reply's opening, a line's opening, an
option echoed in a list and the target of a correction (2), "it's X" / "this appears to be X" (1).
Mentions (a letter or name anywhere else), negated targets ("not D", "D is wrong") and targets of
"unlike"/"rather than" are not commitments. After the last self-correction that has commitments on
both sides, only the later ones count; of the strongest commitments left, all must pick one option.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from clsbench.tasks.protocol.draws import LETTERS

# What a commitment picks when it is not one option.
HEDGE = -1  # "D or F": two options, no choice
CONFLICT = -2  # "D. tiger cat" where tiger cat is F
OUT_OF_RANGE = -3  # a letter beyond the question's options

_QUOTES = "\"'`“”‘’«»「」『』"
_ENDS = ".!?。！？\n;；"  # sentence ends

# ---------------------------------------------------------------------------------------------
# Step 7: clean-up
_SPECIAL_TOKEN = re.compile(
    r"<\|[a-z_]+\|>|</?s>|<eos>|<pad>|<unk>|<end_of_turn>|<start_of_turn>|<end_of_utterance>|\[/?INST\]",
    re.IGNORECASE,
)
_BOX = re.compile(r"<\|begin_of_box\|>(.*?)<\|end_of_box\|>", re.DOTALL | re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<(answer|final_answer|ans|choice|option|letter)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_JSON_ANSWER = re.compile(
    r"[\"'](?:final_answer|answer|choice|option|letter|prediction|selected_option)[\"']\s*:\s*[\"']([^\"']*)[\"']",
    re.IGNORECASE,
)
_JSON_LABEL = re.compile(r"[\"'](?:label|name|class|category|option_text)[\"']\s*:\s*[\"']([^\"']+)[\"']", re.I)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_ROLE = re.compile(r"^\s*(?:<\|?assistant\|?>|assistant|gpt|model|bot)\s*[:：]?\s*\n?", re.IGNORECASE)


def _only(found: list[str]) -> str | None:
    """The one distinct non-empty value found, else None."""
    values = {value.strip() for value in found if value.strip()}
    return values.pop() if len(values) == 1 else None


def _clean(reply: str) -> str:
    text = reply.replace("．", ". ").replace("：", ": ").replace("）", ") ").replace("（", " (")
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"<think>.*?</think>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r"<think>.*", " ", text, flags=re.DOTALL | re.IGNORECASE)  # never closed: all thinking
    text = re.sub(r"^.*?</think>", " ", text, flags=re.DOTALL | re.IGNORECASE)  # template opened it
    for wrapper, group in ((_BOX, 1), (_ANSWER_TAG, 2), (_JSON_ANSWER, 1), (_BOXED, 1)):
        found = [match.group(group) for match in wrapper.finditer(text)]
        if found:
            label = _JSON_LABEL.search(text) if wrapper is _JSON_ANSWER else None
            text = _only(found) or ""  # the wrapped answer is the answer; two different ones are none
            if label and text:
                text = f"{text}. {label.group(1)}"  # {"answer": "Z", "label": "tabby cat"}: the name must agree
            break
    text = _SPECIAL_TOKEN.sub("\n", text)
    text = _ROLE.sub("", text)
    for _ in range(2):
        text = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", text)
    text = text.replace("$", "").replace("’", "'").replace("‘", "'")
    text = re.sub(r"```[a-z]*", "\n", text)
    text = re.sub(r"~~.*?~~", " ", text)  # struck out
    text = re.sub(r"^\s*\|?[\s|:-]*-{3,}[\s|:-]*$", "", text, flags=re.MULTILINE).replace("|", " ")  # tables
    text = re.sub(r"[*#`_]{1,3}(?=\S)|(?<=\S)[*#`_]{1,3}|^\s*#+\s*", "", text, flags=re.MULTILINE)
    text = re.sub(rf"[{_QUOTES}{{<]([A-Za-z])[{_QUOTES}}}>]", r"\1", text)
    text = "".join(char for char in text.strip() if unicodedata.category(char) not in ("So", "Sk", "Cs"))
    text = text.strip().strip(_QUOTES).strip()
    return re.sub(r"[^\w)\]]+$", "", text)  # trailing punctuation, emoji, spaces


# ---------------------------------------------------------------------------------------------
# Names (rule 1): one normaliser for the MCQ and the open- and closed-world tasks
_CATEGORY_WORDS = frozenset(
    "cat cats kitten dog dogs puppy bird birds flower flowers plant car cars vehicle fish breed species logo "
    "brand dish food animal object".split()
)
_DETERMINERS = frozenset("a an the this that these those some un une ein eine uno una".split())
# British/US spellings and abbreviations a grader reads as the full word.
_SPELLING = {
    "gray": "grey",
    "colour": "color",
    "st": "saint",
    "mt": "mount",
    "vw": "volkswagen",
    "chevy": "chevrolet",
    "mac": "macaroni",
    "merc": "mercedes",
}


def name_key(text: str) -> str:
    """Loose comparison key of a class name or reply: case, accents, possessives, punctuation and spacing aside."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    text = "".join(char for char in text if not unicodedata.combining(char)).casefold()
    text = re.sub(r"['’]s\b", "", text).replace("'", "").replace("’", "")
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _one_edit(a: str, b: str) -> bool:
    """Whether two words differ by one inserted, deleted or changed letter."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _same_word(reply_word: str, name_word: str) -> bool:
    """Word equality up to plural, British/US spelling and (for words of 5+ letters) one letter."""
    a, b = _SPELLING.get(reply_word, reply_word), _SPELLING.get(name_word, name_word)
    if a == b or a in (b + "s", b + "es") or b in (a + "s", a + "es"):
        return True
    if a.endswith("ies") and b.endswith("y") and a[:-3] == b[:-1] or b.endswith("ies") and a.endswith("y"):
        return a[:-3] == b[:-1] or b[:-3] == a[:-1]
    return min(len(a), len(b)) >= 4 and max(len(a), len(b)) >= 5 and a[0] == b[0] and _one_edit(a, b)


@dataclass(frozen=True)
class _Options:
    """The question's options as word lists: each name, and its form without a parenthesis."""

    letters: str
    forms: tuple[tuple[tuple[str, ...], ...], ...]  # per option: its word lists
    proper: tuple[bool, ...]  # per option: written with capitals or digits ("Audi TTS Coupe 2012")

    @staticmethod
    @lru_cache(maxsize=4096)
    def of(names: tuple[str, ...]) -> _Options:
        forms = []
        for name in names:
            variants = {tuple(name_key(name).split())}
            words = name_key(name).split()
            if len(words) > 2 and re.fullmatch(r"(?:19|20)\d\d", words[-1]):
                variants.add(tuple(words[:-1]))  # "Bentley Mulsanne Sedan" for "... Sedan 2011"
            variants.add(tuple(name_key(name.replace("'", "").replace("’", "")).split()))  # "coltsfoot"
            bare = re.sub(r"\s*\([^)]*\)", "", name).strip()
            if bare and bare != name:
                variants.add(tuple(name_key(bare).split()))
            forms.append(tuple(sorted(v for v in variants if v)))
        proper = tuple(name != name.lower() or any(char.isdigit() for char in name) for name in names)
        return _Options(LETTERS[: len(names)], tuple(forms), proper)


def _words_match(words: Sequence[str], form: Sequence[str]) -> bool:
    if len(words) == len(form) and all(_same_word(w, f) for w, f in zip(words, form)):
        return True
    return "".join(words) == "".join(form) or "".join(words) in ("".join(form) + "s", "".join(form) + "es")


def _prefix_match(words: Sequence[str], options: _Options) -> tuple[set[int], int]:
    """Options whose full name the words start with (the longest such names), and that length in words."""
    best: set[int] = set()
    best_length = 0
    for index, forms in enumerate(options.forms):
        for form in forms:
            for length in {len(form), len(form) - 1, len(form) + 1}:
                if 0 < length <= len(words) and _words_match(words[:length], form):
                    if length > best_length:
                        best, best_length = {index}, length
                    elif length == best_length:
                        best.add(index)
    return best, best_length


def _strip_words(words: list[str]) -> list[str]:
    while words and words[0] in _DETERMINERS:
        words = words[1:]
    return words


def _whole_match(text: str, options: _Options) -> set[int]:
    """Options a short phrase names as a whole: the full name (a category word may follow) or a unique part."""
    words = _strip_words(name_key(text).split())
    if not words:
        return set()
    hits, length = _prefix_match(words, options)
    rest = words[length:]
    if hits and (not rest or all(word in _CATEGORY_WORDS for word in rest)):
        return hits
    core = [word for word in words if word not in _CATEGORY_WORDS]
    if not core or len(core) > 6 or sum(len(word) for word in core) < 2:
        return set()
    partial, related = set(), set()
    for index, forms in enumerate(options.forms):
        for form in forms:
            head_only = len(core) == 1 and len(form) > 1 and not options.proper[index]
            head = [part for part in form if part not in _CATEGORY_WORDS][-1:] or form[-1:]
            parts = head if head_only else form  # "spider" is no "spider web"; "tabby" is the "tabby cat"
            if all(any(_same_word(word, part) or _compound_head(word, part) for part in parts) for word in core):
                partial.add(index)
            if all(any(_related_word(word, part) for part in form) for word in core):
                related.add(index)
    # "Shorthair" against British Shorthair and German Shorthaired, "hound" against two hounds: no choice
    return partial if len(partial | related) == 1 else set()


def _compound_head(word: str, part: str) -> bool:
    """ "glasses" names "eyeglasses": a word of 5+ letters that ends a compound."""
    return len(word) >= 5 and len(part) > len(word) and part.endswith(word)


def _related_word(word: str, part: str) -> bool:
    """Words a grader would not tell apart in a partial name: one contains the other (4+ letters)."""
    if _same_word(word, part) or (len(word) >= 4 and part.startswith(word[:-1])):
        return True
    return len(word) >= 3 and part.endswith(word) and (len(word) >= 5 or len(part) - len(word) >= 4)


# ---------------------------------------------------------------------------------------------
# Commitments
@dataclass(frozen=True)
class _Commitment:
    position: int
    choice: int  # option index, or HEDGE / CONFLICT / OUT_OF_RANGE
    strength: int
    kind: str = "answer"  # or "identifies" ("the bird is an Ivory Gull"), "alternative" ("could also be R")


_ANSWER_WORDS = (
    r"(?:answer|option|choice|match|pick|guess|selection|classification|identification|prediction|label|conclusion"
    r"|verdict)"
)
_ANSWER_PHRASES = [
    # English: "the (correct) answer is", "Answer:", "my final answer is", "I'd go with", "I choose"
    rf"\b(?:the\s+|my\s+|our\s+)?(?:(?:final|correct|right|best|most\s+likely|most\s+appropriate|only|closest|"
    rf"likely|true|actual)\s+)*{_ANSWER_WORDS}(?:\s+(?:here|then|for\s+this\s+(?:image|question|photo)))?"
    r"\s*(?:is|would\s+be|should\s+be|will\s+be|must\s+be|=|:|\s[-–—]|—|is\s*:)",
    r"\bi\s*(?:'d|would|'ll|will|shall)\s+(?:go\s+with|choose|pick|select|say|answer|guess)\b\s*:?",
    r"\bi\s+(?:choose|pick|select|guess|answer)\b\s*:?",
    r"\b(?:so|thus|therefore|hence|consequently)\b\s*,?\s*(?:(?:it\s*'s|it\s+is|i\s+choose|i\s+pick|we\s+get)\s+)?(?=\S)",
    r"\b(?:corresponds?\s+to|(?:best\s+)?match(?:es)?|which\s+is|(?:most\s+)?consistent\s+with|closest\s+to|fits?)"
    r"\s+(?=(?:option|choice|letter)\b)",
    r"\bgoing\s+with\b",
    # Chinese, Japanese, Korean
    r"(?:正确)?答案\s*(?:是|为|應?該?是|:)|最终答案\s*(?:是|为|:)?|选项|我?(?:应该)?选择?(?!项)|回答\s*:|正解\s*(?:は|:)"
    r"|答え\s*(?:は|:)",
    r"정답\s*(?:은|는|:)|답\s*(?:은|:)",
    # German, French, Spanish, Italian, Portuguese, Russian, Dutch
    r"\b(?:die\s+)?(?:richtige\s+)?antwort\s*(?:ist|lautet|:)|\blösung\s*:",
    r"\b(?:la\s+)?(?:bonne\s+)?réponse\s*(?:correcte\s*)?(?:est|:)",
    r"\b(?:la\s+)?respuesta\s*(?:correcta\s*)?(?:es|:)",
    r"\b(?:la\s+)?risposta\s*(?:corretta\s*)?(?:è|e|:)",
    r"\b(?:a\s+)?resposta\s*(?:correta\s*)?(?:é|:)",
    r"(?:правильный\s+)?ответ\s*(?:—|-|:)?",
    r"\b(?:het\s+)?(?:juiste\s+)?antwoord\s*(?:is|:)",
]
_ANSWER_PHRASE = re.compile("|".join(f"(?:{p})" for p in _ANSWER_PHRASES), re.IGNORECASE)
# The reply's opening: phrases that may come before the answer, stripped repeatedly.
_OPENING = re.compile(  # used with match(text, pos): no "^"
    r"(?:(?:so|thus|therefore|ok(?:ay)?|well|sure|yes|hmm+|alright)\s*[,!.:]?\s+|"
    r"(?:i\s+think|i\s+believe|i\s+guess|i\s*'m\s+(?:fairly\s+|pretty\s+)?(?:sure|confident)|in\s+my\s+opinion|"
    r"based\s+on\s+the\s+image|(?:probably|likely|definitely|clearly|certainly))\s*[:,]?\s*(?:that\s+)?|"
    r"(?:it\s*'s|it\s+is|this\s+is|that\s*'s|that\s+is|(?:it|that|this)\s+(?:would|should|must|could)\s+be|"
    r"c\s*'\s*est|je\s+pense\s+que|(?:es|è|é|ist)(?:\s+(?:la|el|le|die|der|das|a|o))?|das\s+ist|i\s+(?:can\s+)?see|"
    r"this\s+(?:looks|appears)\s+(?:like|to\s+be)|it\s+(?:looks|appears)\s+(?:like|to\s+be)|looks\s+like|"
    r"(?:the|this)\s+(?:image|photo|picture)\s+(?:shows|depicts|contains|is\s+of)|"
    r"(?:maybe|perhaps|possibly|could\s+be|might\s+be|either))\s+|"
    r"(?:option|choice|letter)\s+(?=\(?[A-Za-z]\)?(?![A-Za-z0-9])))",
    re.IGNORECASE,
)
# "it's F", "this appears to be a tiger cat" in the middle of a reply: a weaker commitment.
_IDENTIFY = re.compile(
    r"(?:\bit\s*'s|\bit\s+is|\bthis\s+is|\bthat\s*'s|\bthis\s+(?:looks|appears)\s+(?:like|to\s+be)|"
    r"\b(?:looks|appears)\s+(?:like|to\s+be)|\b(?:image|photo|picture)\s+(?:shows|depicts|contains)|"
    r"\bidentified\s+as|\bclassified\s+as|\bmost\s+likely|\bprobably|\bindicates|\bsuggests|\bpoints\s+to|"
    r"\bi\s+(?:can\s+)?see|\bc\s*'\s*est|\b(?:es|è|ist)(?:\s+(?:la|el|le|die|der|das))?|\bs\s*'\s*agit\s+d\s*'|"
    r"\b(?:is|are)(?:\s+(?:probably|likely|clearly|definitely|most\s+likely|certainly))?)\s+",
    re.IGNORECASE,
)
_CORRECTION = re.compile(
    r"\b(?:wait|actually|no\s+wait|correction|i\s+mean|on\s+second\s+thought|scratch\s+that|"
    r"let\s+me\s+(?:reconsider|correct)|looking\s+(?:again|closer|more\s+closely)|on\s+closer\s+(?:inspection|look)|"
    r"upon\s+closer\s+(?:inspection|look)|sorry|oops|my\s+mistake|i\s+was\s+wrong|rather|instead)\b[,.!:]*\s*|"
    r"\bno\s*[,.!—–-]\s*|(?:不对|等等|其实|更正)[，,。]?\s*|\b(?:moment|eigentlich|en\s+realidad|en\s+fait|perdón)\b[,.!]*\s*",
    re.IGNORECASE,
)
_NEGATION_BEFORE = re.compile(
    r"(?:\bnot|n't|\bnever|\bno|\brather\s+than|\binstead\s+of|\bunlike|\bexcept(?:\s+for)?|\bother\s+than|\bthan|"
    r"\bexclude|\bexcluding|\brule\s+out|\bruled\s+out|\beliminate|\bnor|\bnicht|\bkein|\bpas|\bnão|不是|并非|排除)"
    r"\s*(?:(?:the|a|an|option|choice|answer|letter|be)\s+)*[(\[]?$",
    re.IGNORECASE,
)
_NEGATION_AFTER = re.compile(
    r"^\s*(?:\([^)]*\)\s*)?,?\s*(?:(?:is|are|would\s+be|seems?|looks?)\s+(?:not\b|too\b)|isn't|aren't|doesn't|"
    r"does\s+not|(?:is\s+|are\s+|would\s+be\s+|seems\s+)?(?:wrong|incorrect|unlikely|ruled\s+out|eliminated|excluded)|"
    r"can\s+be\s+(?:ruled\s+out|eliminated))",
    re.IGNORECASE,
)
_AFFIRM = re.compile(r"^\s*(?:is|seems|looks)\s+(?:the\s+)?(?:correct|right|best|most|answer|option|choice)", re.I)
_HEDGE = re.compile(
    r"^\s*(?:\([^)]*\)\s*)?(?:,\s*|/\s*|\s+)(?:(?:or|and|oder|ou|o|y|und|et|или)\s+|또는\s*|または\s*|或者?|和|还是)?"
    r"(?:(?:maybe|possibly|perhaps|probably)\s+)?",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(  # used with match(text, pos): no "^"
    r"(?:(?:a|an|the)\s+)?(?:photo|image|picture|close-up|closeup|pair|kind|type|species|breed|bowl|plate|serving|slice|piece|portion|logo)"
    r"\s+of\s+|(?:the\s+)?(?:option|choice|letter)\s+"
    r"|(?:la|el|le|die|der|das|lo)\s+(?=\(?[A-Za-z]\)?(?![A-Za-z0-9]))|(?:选项|選項|opción|opção|вариант)\s*",
    re.IGNORECASE,
)


def _negated(text: str, start: int, end: int) -> bool:
    """Whether the target at text[start:end] is negated or ruled out where it stands."""
    clause_start = max(text.rfind(mark, 0, start) for mark in _ENDS + ",")
    before = text[clause_start + 1 : start]
    if _NEGATION_BEFORE.search(before.rstrip() + (" " if before[-1:].isspace() else "")):
        return True
    return bool(_NEGATION_AFTER.match(text[end:]))


def _sentence_end(text: str, start: int) -> int:
    ends = [i for i in (text.find(mark, start) for mark in _ENDS) if i >= 0]
    stops = [match.start() for match in re.finditer(r"\.(?=\s|$)", text[start:])]
    ends += [start + stop for stop in stops]
    return min(ends, default=len(text))


_LETTER = re.compile(r"\((?P<paren>[A-Za-z])\)|\[(?P<bracket>[A-Za-z])\]|(?P<bare>[A-Za-z])(?![A-Za-z0-9'’-])")


def _letter_target(text: str, start: int, options: _Options, *, phrased: bool) -> tuple[int, int] | None:
    """A letter at ``text[start:]`` as ``(choice, end)``, or None when what stands there is no letter.

    ``phrased``: an answer phrase introduced it ("Answer: I" is the letter, "I am" is the pronoun).
    """
    match = _LETTER.match(text, start)
    if not match:
        return None
    raw = match.group("paren") or match.group("bracket") or match.group("bare")
    wrapped = match.group("bare") is None
    end = match.end()
    after = text[end:]
    if not wrapped:
        if re.match(r"\.[A-Za-z]", after):
            return None  # "I.e.", "C.D."
        if raw in "AaIi" and re.match(r"[ \t]+(?!(?:or|and|is|was|because|since|as)\b)[A-Za-z\u00c0-\u024f]", after):
            # "A tiger cat", "I am not sure", "A Bengal": the article or pronoun, unless its own name follows
            index = LETTERS.index(raw.upper())
            if index >= len(options.letters) or index not in _whole_match(_first_phrase(after), options):
                return None
        if raw.islower() and not phrased and not re.match(r"\s*(?:[.):]|$)", after):
            return None  # "x ray": a word, not option x
    letter = raw.upper()
    if letter not in options.letters:
        return OUT_OF_RANGE, end
    choice = options.letters.index(letter)
    hedge = _HEDGE.match(after)
    if hedge and hedge.group(0).strip():
        other = _LETTER.match(after, hedge.end())
        if other and (other.group("paren") or other.group("bracket") or other.group("bare")).upper() != letter:
            rest = after[other.end() :]
            if not re.match(r"\s+[a-z]", rest) or rest.strip().startswith(("or", "and")):
                if not _NEGATION_AFTER.match(rest):
                    return HEDGE, end + other.end()
    gloss = re.sub(r"^\s*(?:[.:),;]|[-–—]|\s)\s*", "", after)
    if gloss and not _AFFIRM.match(gloss):
        named = _gloss_names(gloss, options)
        if named and choice not in named:
            return CONFLICT, end
    return choice, end


def _first_phrase(text: str) -> str:
    """The words up to the first clause mark."""
    return re.split(
        r"[,;:.!?()\n。，|]|\s[-–—]\s|\s+(?:or|and|because|since|with|which|that|sitting|standing|lying|perched|parked|"
        r"resting|coiled|swimming|flying|on|in|at|near|next\s+to)\s",
        text.strip(),
        maxsplit=1,
    )[0]


_PREDICATE = re.compile(
    r"^(?:the\s+)?(?:\w+\s+){0,3}?(?:is|are|shows|depicts|looks\s+like|appears\s+to\s+be)\s+(?:a|an|the)?\s*",
    re.IGNORECASE,
)


def _gloss_names(gloss: str, options: _Options) -> set[int]:
    """Options the text after a letter names: its first phrase, or the predicate of its first sentence."""
    gloss = re.sub(r"^\s*\(", "", gloss)
    named = _name_target(gloss, 0, options, whole=True)
    if named is not None:
        return {named[0]} if named[0] >= 0 else set(range(len(options.letters)))
    sentence = gloss[: _sentence_end(gloss, 0)]
    predicate = _PREDICATE.match(sentence)
    if predicate:
        hits = _whole_match(_first_phrase(sentence[predicate.end() :]), options)
        if hits:
            return hits
    return set()


def _words_with_ends(text: str) -> tuple[list[str], list[int]]:
    """The name-key words of a text and, for each, where its source token ends in the text."""
    words: list[str] = []
    ends: list[int] = []
    for token in re.finditer(r"[^\W_]+(?:['’][^\W_]+)*", text):
        for word in name_key(token.group()).split():
            words.append(word)
            ends.append(token.end())
    return words, ends


_AFTER_NAME = re.compile(
    r"(?:with|on|in|at|sitting|standing|lying|from|near|of|under|is|are|was|because|since|or|and|but|as|which)\b"
)


def _proper(phrase: str) -> bool:
    """Whether a phrase may name an option by a part in running text: two words or more, a proper noun, or a
    noun after an article ("a gull"; "red" in "it is red" could be an adjective)."""
    words = [w for w in _strip_words(name_key(phrase).split()) if w not in _CATEGORY_WORDS]
    if re.fullmatch(r"(?:a|an|the)\s+[^\W\d_]+", phrase.strip(), flags=re.IGNORECASE):
        return True
    return len(words) >= 2 or bool(re.search(r"(?:^|\s)(?:[A-Z]|\d)", phrase.strip()))


def _name_target(text: str, start: int, options: _Options, *, whole: bool) -> tuple[int, int] | None:
    """An option's name at ``text[start:]`` as ``(choice, end)``; two names joined by "or" are a hedge.

    The longest full name the sentence starts with wins ("bell or wind chime" over "bell"); else, when
    ``whole``, the first phrase may name one option by a unique part ("M3", "Onion soup").
    """
    span = text[start : _sentence_end(text, start)]
    lead = _LEAD_IN.match(span)
    offset = lead.end() if lead else 0
    words, ends = _words_with_ends(span[offset:])
    skip = 0
    while skip < len(words) and words[skip] in _DETERMINERS:
        skip += 1
    hits, length = _prefix_match(words[skip:], options)
    end = start + offset + (ends[skip + length - 1] if hits else 0)
    phrase = _first_phrase(span[offset:])
    if hits:
        rest = words[skip + length :]
        if rest and rest[0] in _CATEGORY_WORDS:
            end, rest = start + offset + ends[skip + length], rest[1:]
        clause_ends = not rest or _AFTER_NAME.match(" ".join(rest)) or re.match(r"\s*[(,;:]", text[end:])
        if not clause_ends:
            partial = _whole_match(phrase, options) if whole or _proper(phrase) else set()
            if partial and partial != hits:  # "a crocodile head": the phrase names "head of a crocodile"
                hits, end = partial, start + offset + len(phrase)
            elif not whole:
                hits = set()  # "a tiger cat-like pattern": the name must end where a clause could
    elif whole or _proper(phrase):
        hits = _whole_match(phrase, options)
        end = start + offset + len(phrase)
    if not hits:
        return None
    if len(hits) > 1:
        return HEDGE, end
    after = text[end:]
    alternative = re.match(
        r"[\s)\]]*(?:\([^)]*\)\s*)?(?:,\s*)?(?:or|and|/|oder|ou|o|или|또는|または|或者?)\s+(?:maybe\s+|possibly\s+|perhaps\s+)?",
        after,
    )
    if alternative:
        other = _name_target(text, end + alternative.end(), options, whole=True)
        if other and other[0] not in hits:
            return HEDGE, other[1]
    return hits.pop(), end


def _target(text: str, start: int, options: _Options, *, phrased: bool, whole: bool) -> tuple[int, int] | None:
    """What stands at ``text[start:]``: a letter, else an option's name."""
    while True:
        skipped = re.match(r"[\s:：,\-–—]*", text[start:])
        start += skipped.end()
        lead = _LEAD_IN.match(text, start)
        if not lead or lead.end() == start:
            break
        start = lead.end()
    found = _letter_target(text, start, options, phrased=phrased)
    if found is not None:
        return found
    return _name_target(text, start, options, whole=whole)


def _opening(text: str, start: int) -> int:
    """Where the answer begins after the phrases that may open a reply or line."""
    while True:
        match = _OPENING.match(text, start) or _ANSWER_PHRASE.match(text, start)
        if not match or match.end() == start:
            return start
        start = match.end()
        start += len(text[start:]) - len(text[start:].lstrip(" \t:"))


# The image's content named as a fact: must agree with the chosen letter.
_IDENTIFICATION = re.compile(
    r"\b(?:it|this|that|(?:the|this)\s+(?:\w+\s+){0,2}?(?:animal|bird|object|car|vehicle|dish|food|flower|plant|logo|"
    r"dog|cat|item|breed|species|model|subject)(?:\s+(?:in|of)\s+(?:the|this)\s+(?:image|picture|photo))?)\s*"
    r"(?:'s|is|appears\s+to\s+be|looks\s+like|seems\s+to\s+be)\s+(?:clearly\s+|probably\s+|likely\s+|definitely\s+)?",
    re.IGNORECASE,
)
# An equal alternative: "but it could just as well be a Common Tern (R)".
_ALTERNATIVE = re.compile(
    r"\b(?:could|might|may)\s+(?:just\s+)?(?:as\s+well|equally|also)\s+be\s+|\bequally\s+(?:likely|possible)\s*:?\s*",
    re.IGNORECASE,
)
_UNSURE = re.compile(
    r"\b(?:not\s+(?:sure|certain|confident)|unsure|uncertain|can\s*'?n[o']?t\s+(?:tell|be\s+sure|determine|decide)|"
    r"hard\s+to\s+(?:say|tell)|don\s*'?t\s+know|no\s+idea)\b|不确定|不知道",
    re.IGNORECASE,
)
_TENTATIVE = re.compile(r"(?:maybe|perhaps|possibly|might\s+be|could\s+be)\s*,?\s*$", re.IGNORECASE)


def _clauses(text: str, start: int, stop: int) -> list[int]:
    """Where each clause between ``start`` and ``stop`` begins (after commas, colons, dashes)."""
    return [start] + [start + m.end() for m in re.finditer(r"[,:;]\s+|\s[-–—]+\s*|—\s*", text[start:stop])]


def _commitments(text: str, options: _Options) -> list[_Commitment]:
    found: list[_Commitment] = []

    def add(
        start: int,
        strength: int,
        *,
        phrased: bool,
        whole: bool,
        entire: bool = False,
        echo: bool = False,
        kind: str = "answer",
    ):
        target = _target(text, start, options, phrased=phrased, whole=whole)
        if target is None:
            return None
        choice, end = target
        first = start + len(text[start:]) - len(text[start:].lstrip(" \t:,-"))
        if choice >= 0 and _negated(text, first, end):
            return None
        after = text[end:]
        if entire and after.strip(" \t)].!?。") and not re.match(r"\s*(?:[.!?。\n]|$)", after):
            return None  # a clause must be the name or letter alone
        if echo and (choice < 0 or choice not in _gloss_names(re.sub(r"^[.):]?\s*", "", after), options)):
            return None  # "(F, G, N, T)": letters listed, not chosen
        if choice >= 0 and re.match(r"[.):]?\s+(?:is|are)\s", after) and not _AFFIRM.match(after.lstrip(".):")):
            strength = min(strength, 1)  # "R is Brandt Cormorant": a description, not a choice
        if _TENTATIVE.search(text[max(0, start - 20) : start]):
            strength = min(strength, 1)  # "maybe E"
        found.append(_Commitment(start, choice, strength, kind))
        return choice

    line_start = 0
    for line in text.split("\n"):
        if line.strip():
            body = line_start + len(line) - len(line.lstrip())
            first_line = not text[:line_start].strip()
            opened = _opening(text, body)
            add(opened, 3 if _ANSWER_PHRASE.match(text, body) else 2, phrased=opened > body, whole=True)
            if not first_line:
                bullet = re.match(r"\s*(?:[-•*]|\d+[.)])\s+", text[body:])
                if bullet and re.match(r"\(?[A-Z][.):]\s", text[body + bullet.end() :]):  # "- D. tabby cat: ..."
                    add(body + bullet.end(), 1, phrased=False, whole=False)
        line_start += len(line) + 1
    for match in re.finditer(r"(?:[.!?;:。]|\s[-–—]+)\s+(?=\S)", text):  # a later sentence or clause, alone
        last = not re.search(r"[.!?;:。\n]\s*\S", text[match.end() :])
        add(_opening(text, match.end()), 2 if last else 1, phrased=False, whole=True, entire=True)
    for match in _ANSWER_PHRASE.finditer(text):
        add(match.end(), 3, phrased=True, whole=False)
    for match in _IDENTIFY.finditer(text):
        add(match.end(), 1, phrased=False, whole=False)
    for match in _IDENTIFICATION.finditer(text):
        add(match.end(), 0, phrased=False, whole=False, kind="identifies")
    for match in _ALTERNATIVE.finditer(text):
        add(match.end(), 0, phrased=True, whole=False, kind="alternative")
    for match in _CORRECTION.finditer(text):
        stop = _sentence_end(text, match.end())
        for clause in _clauses(text, match.end(), max(stop, match.end() + 1)):
            skipped = re.match(r"(?:\s*(?:no\b|[-–—,:])\s*)*", text[clause:])
            if add(_opening(text, clause + skipped.end()), 2, phrased=True, whole=True) is not None:
                break
    for match in re.finditer(r"[,;]\s*(?=\(?[A-Z][.)]\s)", text):  # "C. red fox, D. great white shark"
        add(match.end(), 2, phrased=False, whole=False, echo=True)
    return found


def _decide(text: str, found: list[_Commitment]) -> int | None:
    if not found:
        return None
    found.sort(key=lambda item: item.position)
    for match in reversed(list(_CORRECTION.finditer(text))):
        before = [item for item in found if item.position < match.start()]
        after = [item for item in found if item.position >= match.start()]
        if before and _UNSURE.search(text, match.start()):
            return None  # "I. Wait, actually I'm not sure."
        if before and after and {item.choice for item in before} != {item.choice for item in after}:
            found = after
            break
    asides = [item for item in found if item.kind != "answer"]
    found = [item for item in found if item.kind == "answer"] or [item for item in asides if item.kind == "identifies"]
    if not found:
        return None
    strongest = max(item.strength for item in found)
    choices = {item.choice for item in found if item.strength == strongest}
    if len(choices) != 1:
        return None
    choice = choices.pop()
    if any(item.choice >= 0 and item.choice != choice for item in asides):
        return None  # "The answer is D. The animal is a tiger cat.", "O, but it could just as well be R"
    return choice if choice >= 0 else None


def parse_answer(reply: str | None, option_names: Sequence[str]) -> str | None:
    """The option letter a reply commits to among ``option_names`` (A first), or None (see the module docstring).

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
    options = _Options.of(tuple(option_names))
    whole = name_key(text)
    exact = [index for index, forms in enumerate(options.forms) if any(" ".join(f) == whole for f in forms)]
    if len(text) > 1 and len(exact) == 1:
        return options.letters[exact[0]]
    choice = _decide(text, _commitments(text, options))
    return None if choice is None else options.letters[choice]


def match_name(reply: str | None, names: Sequence[str]) -> int | None:
    """The one class a free-form reply names (the MCQ parser's name rules over any number of names), else None.

    Used by the open- and closed-world tasks, where there are no letters: "Red fox.", "It's a red
    fox", "red foxes" all name "red fox"; a reply matching two names, or none, is None.
    """
    text = _clean(str(reply or ""))
    if not text:
        return None
    options = _Options.of(tuple(names))
    whole = name_key(text)
    exact = [index for index, forms in enumerate(options.forms) if any(" ".join(f) == whole for f in forms)]
    if len(exact) == 1:
        return exact[0]
    start = _opening(text, 0)
    target = _name_target(text, start, options, whole=True)
    if target is None or target[0] < 0 or target[1] < len(text.rstrip()) - 1:
        return None
    return target[0]
