"""Keep an answer tied to its evidence, after generation.

Citation markers that point to no retrieved source are removed. Then every sentence is checked
two ways and flagged when either fails (never silently dropped: the reader decides):
- its values (numbers, amounts, percentages, dates, times, codes such as IL-6, proper names)
  must each appear in some retrieved passage. Numbers are compared as values (27 = twenty-seven
  = 27.0, 1,234 = 1234, $1.2 million = 1,200,000, 5% = 5 percent) and by unit when both sides
  give one (20 days is not 20 weeks), rounded only after "about" or a scale word; dates by year,
  month and day. Sums the model worked out itself are not in the sources: flagged too.
- a sentence that makes a claim must be supported by the passages it cites (or, uncited, by
  some source): enough of its content words appear in one, or it is close to one in the
  embedder's space.
"""

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from assistant import prompts
from ingestion import index, lexical

CITATION = re.compile(r"\s?\[(\d{1,3})\]")
# A sentence ends at . ! or ? followed by a space (not "14.5"), or a line break; a citation
# written after the full stop still belongs to the sentence before it.
BOUNDARY = re.compile(r"(?<=[.!?])\s+(?!\[\d)|\n+")
MIN_CLAIM_TERMS = 3  # shorter sentences ("Yes.", "Here is what I found:") claim nothing
SOURCE_NAME = re.compile(r"\b(?:source|document|passage|excerpt)s?\s+\d+", re.IGNORECASE)
LIST_NUMBER = re.compile(r"^[\s>#*+-]*\d{1,2}[.)](?=\s|$)")  # "1. …" in a numbered list

# --- Values: what a sentence states that can be looked up ---------------------------------------
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
MONTH_NAME = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December)"
)
MONTH = rf"(?:{MONTH_NAME}\b|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\b\.?)"
SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINALS = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
    "eighteenth", "nineteenth",
]  # fmt: skip
WORD_VALUES = {w: i for i, w in enumerate(SMALL)} | {w: i + 1 for i, w in enumerate(ORDINALS)}
WORD_VALUES |= {w: 20 + 10 * i for i, w in enumerate(TENS)}
# Alone, these are a pronoun or an adverb far more often than a figure ("one of", "first, …").
NOT_FIGURES = {"one", "first", "second"}
SCALES = {"hundred": 100, "thousand": 10**3, "million": 10**6, "billion": 10**9, "bn": 10**9}
CARDINAL = "|".join([*SMALL, *TENS, "hundred", "thousand", "million", "billion"])
ORDINAL_WORD = "|".join(ORDINALS)
UNITS = {"percent": "%", "per cent": "%", "dollar": "$", "usd": "$", "euro": "€", "eur": "€"}
UNITS |= {"pound": "£", "gbp": "£"}
IN_SMALLER_UNITS = {"week": ("day", 7), "year": ("month", 12), "hour": ("minute", 60)}
UNIT = (
    r"%|per\s?cent\b|(?:day|week|month|year|hour|minute|second|km|kg|mg|ml|mm|cm|dollar|euro"
    r"|pound|usd|eur|gbp)s?\b"
)
AMOUNT = re.compile(
    # "about" lets a value be rounded, to its last written digit; so does a scale word.
    rf"(?P<about>\b(?:about|approximately|around|roughly|nearly|almost|some)\s+|~\s?)?"
    rf"(?P<currency>[$€£]|\b(?:USD|EUR|GBP)\s?)?(?<![\w.])"
    rf"(?P<number>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?|\.\d+"
    # "and" only after hundred or thousand, the only number words ending in d: "between ten and
    # sixteen" is two numbers.
    rf"|\b(?:{CARDINAL})(?:(?:(?<=d)\s+and\s+|[\s-]+)(?:{CARDINAL}))*(?:-(?:{ORDINAL_WORD}))?\b"
    rf"|\b(?:{ORDINAL_WORD})\b)"
    rf"(?:\s?(?P<scale>thousand|million|billion|bn)\b)?(?:[\s-]?(?P<unit>{UNIT}))?",
    re.IGNORECASE,
)
ORDINAL = r"(?:st|nd|rd|th)?"
ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
DAY_MONTH = re.compile(rf"\b(\d{{1,2}}){ORDINAL}(?:\s+of)?\s+({MONTH})(?:,?\s+(\d{{4}})\b)?")
MONTH_DAY = re.compile(rf"\b({MONTH})\s+(\d{{1,2}}){ORDINAL}\b(?:,?\s+(\d{{4}})\b)?")
# A month alone only by its full name: "Jan" alone is more likely someone's name.
MONTH_YEAR = re.compile(rf"\b({MONTH})\s+(\d{{4}})\b|\b({MONTH_NAME})\b")
TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b(?:\s?([ap])\.?m\b)?|\b(\d{1,2})\s?([ap])\.?m\b", re.I)
CODE = re.compile(r"\b(?=[A-Za-z][\w-]*\d)[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")  # IL-6, Q1
NAME = re.compile(r"\b[A-Z][A-Za-z]+\b")
LETTERS = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Value:
    kind: str  # number, date, time, code or name
    key: tuple[Any, ...]  # what is compared
    text: str  # as written


def _number(m: re.Match[str]) -> Value | None:
    written = m["number"].lower()
    if written[0].isdigit() or written[0] == ".":
        number = Decimal(written.replace(",", ""))
    elif written in NOT_FIGURES:
        return None
    else:
        number = Decimal(_words(re.split(r"[\s-]+(?:and\s+)?", written)))
    scale = SCALES[m["scale"].lower()] if m["scale"] else 1
    unit = (m["currency"] or m["unit"] or "").strip().lower().removesuffix("s")
    unit = UNITS.get(re.sub(r"\s+", " ", unit), unit)
    # A rounded value stands for anything within half its last written digit.
    last_digit = Decimal(1).scaleb(number.as_tuple().exponent)  # type: ignore[arg-type]
    tolerance = last_digit * scale / 2 if m["about"] or m["scale"] else Decimal(0)
    return Value("number", (number * scale, unit, tolerance), m.group().strip())


def _in_smaller_units(number: Decimal, unit: str, tolerance: Decimal) -> tuple[Any, ...]:
    """Two weeks as 14 days, so that either can be looked up."""
    if unit not in IN_SMALLER_UNITS:
        return number, unit, tolerance
    smaller, factor = IN_SMALLER_UNITS[unit]
    return number * factor, smaller, tolerance * factor


def _words(words: list[str]) -> int:
    total = current = 0
    for word in words:
        if word == "hundred":
            current = max(current, 1) * 100
        elif word in SCALES:
            total, current = total + max(current, 1) * SCALES[word], 0
        else:
            current += WORD_VALUES[word]
    return total + current


def _date(year: str | None, month: str, day: str | None) -> tuple[int | None, int, int | None]:
    number = int(month) if month.isdigit() else MONTHS.index(month[:3].lower()) + 1
    return (int(year) if year else None, number, int(day) if day else None)


def _time(m: re.Match[str]) -> tuple[int, int]:
    hour, half = int(m[1] or m[4]), (m[3] or m[5] or "").lower()
    if half == "p" and hour < 12:
        hour += 12
    return (0 if half == "a" and hour == 12 else hour, int(m[2] or 0))


# In this order: a date's or a time's digits are not read again as numbers, nor a code's.
READERS: list[tuple[re.Pattern[str], Any]] = [
    (ISO_DATE, lambda m: Value("date", _date(m[1], m[2], m[3]), m.group())),
    (DAY_MONTH, lambda m: Value("date", _date(m[3], m[2], m[1]), m.group())),
    (MONTH_DAY, lambda m: Value("date", _date(m[3], m[1], m[2]), m.group())),
    (MONTH_YEAR, lambda m: Value("date", _date(m[2], m[1] or m[3], None), m.group())),
    (TIME, lambda m: Value("time", _time(m), m.group().strip())),
    (CODE, lambda m: Value("code", (m.group().lower().replace("-", ""),), m.group())),
    (AMOUNT, _number),
]


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group())


def values(text: str, names: bool = True) -> list[Value]:
    """Every value `text` states, in order. A capitalised word is a name, except the first of
    a sentence or after a colon."""
    found: list[tuple[int, Value]] = []
    for pattern, reader in READERS:
        for m in pattern.finditer(text):
            if (value := reader(m)) is not None:
                found.append((m.start(), value))
        text = pattern.sub(_blank, text)  # offsets kept, and nothing is read twice
    if names:
        for m in NAME.finditer(text):
            before = text[: m.start()].rstrip()
            if LETTERS.search(before) and not before.endswith(":"):
                found.append((m.start(), Value("name", (m.group().lower(),), m.group())))
    return [value for _, value in sorted(found, key=lambda pair: pair[0])]


@dataclass
class Evidence:
    """The values of the retrieved passages, to look an answer's up in."""

    numbers: list[tuple[Decimal, str]] = field(default_factory=list)
    converted: list[tuple[Decimal, str]] = field(default_factory=list)  # 2 weeks as 14 days
    dates: list[tuple[int | None, int, int | None]] = field(default_factory=list)
    times: set[tuple[int, int]] = field(default_factory=set)
    words: set[str] = field(default_factory=set)  # lower-cased, and codes without hyphens


def evidence(text: str) -> Evidence:
    known = Evidence(words={w.lower() for w in LETTERS.findall(text)})
    for value in values(text, names=False):
        if value.kind == "number":
            known.numbers.append(value.key[:2])
            known.converted.append(_in_smaller_units(*value.key)[:2])
        elif value.kind == "date":
            known.dates.append(value.key)  # type: ignore[arg-type]
            # "in 2024", "on the 31st": a date's year and day are numbers too.
            year, _, day = value.key
            known.numbers += [(Decimal(n), "") for n in (year, day) if n]
        elif value.kind == "time":
            known.times.add(value.key)  # type: ignore[arg-type]
            known.numbers.append((Decimal(value.key[0]), ""))
        else:
            known.words.add(value.key[0])
    return known


def found(value: Value, known: Evidence) -> bool:
    if value.kind == "number":
        number, unit, tolerance = _in_smaller_units(*value.key)
        # A bare 108 is not "9 years" (108 months).
        candidates = known.numbers + known.converted if unit else known.numbers
        return any(
            abs(number - n) <= tolerance and (not unit or not u or unit == u) for n, u in candidates
        )
    if value.kind == "date":
        year, month, day = value.key
        return any(
            month == m
            and day in (None, d)
            and (year in (None, y) or (y is None and (Decimal(year), "") in known.numbers))
            for y, m, d in known.dates
        )
    if value.kind == "time":
        return value.key in known.times
    return value.key[0] in known.words


def not_found(sentence: str, known: Evidence) -> list[str]:
    """The values of `sentence` that no passage has, as written, each once."""
    # "[2]", "source 2", a list's "3." claim nothing.
    claim = LIST_NUMBER.sub("", SOURCE_NAME.sub("", CITATION.sub("", sentence)))
    return list(dict.fromkeys(v.text for v in values(claim) if not found(v, known)))


# --- The check ----------------------------------------------------------------------------------
@dataclass
class Grounding:
    answer: str  # the answer without dangling citations
    cited: list[int] = field(default_factory=list)
    dangling: list[int] = field(default_factory=list)
    # {"sentence": as it appears in `answer`, "values": those of its values no passage has}
    unsupported: list[dict] = field(default_factory=list)

    def as_record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "answer"}


def drop_dangling(text: str, numbers: set[int]) -> tuple[str, list[int]]:
    dangling: set[int] = set()

    def keep(match: re.Match[str]) -> str:
        if int(match.group(1)) in numbers:
            return match.group(0)
        dangling.add(int(match.group(1)))
        return ""

    return CITATION.sub(keep, text), sorted(dangling)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in BOUNDARY.split(text) if s.strip()]


def overlap(claim: set[str], passage: str, language: str) -> float:
    """Stemmed in the claim's language, never the passage's own: a short question can fall back
    to English, and stems of one language never meet another's."""
    return len(claim & set(lexical.terms(passage, language))) / len(claim)


def check(answer: str, sources: list[dict], language: str | None = None) -> Grounding:
    """Flag sentences whose values or claims no source supports; their words, and the passages',
    are stemmed in the answer's language (the question's, given by the caller; else detected
    from the answer)."""
    by_number = {s["n"]: prompts.source_text(s) for s in sources}
    text, dangling = drop_dangling(answer, set(by_number))
    result = Grounding(answer=text, dangling=dangling)
    result.cited = sorted({int(n) for n in CITATION.findall(text)})
    known = evidence("\n".join(f"{s.get('title', '')}\n{prompts.source_text(s)}" for s in sources))
    unsupported = set(unsupported_claims(text, by_number, language))
    for sentence in sentences(text):
        missing = not_found(sentence, known)
        if missing or sentence in unsupported:
            result.unsupported.append({"sentence": sentence, "values": missing})
    return result


def unsupported_claims(
    text: str, by_number: dict[int, str], language: str | None = None
) -> list[str]:
    """Sentences that claim something neither their cited passages (or, uncited, any passage)
    support, by shared content words or closeness in the embedder's space."""
    claims: list[tuple[str, list[str]]] = []
    language = language or lexical.language_of(text)
    for sentence in sentences(text):
        cited = [int(n) for n in CITATION.findall(sentence)]
        terms = set(lexical.terms(CITATION.sub("", sentence), language))
        if len(terms) < MIN_CLAIM_TERMS:
            continue
        passages = [by_number[n] for n in cited] or list(by_number.values())
        if not any(overlap(terms, p, language) >= settings.GROUNDING_MIN_OVERLAP for p in passages):
            claims.append((sentence, passages))
    placed = placed_by_meaning(claims)
    return [s for s, _passages in claims if s not in placed]


def placed_by_meaning(claims: list[tuple[str, list[str]]]) -> set[str]:
    """The semantic check, only for the sentences the lexical one could not place: those close
    enough to one of their passages in the embedder's space. One embedding call for all of them
    and their passages (each passage once), not one per sentence."""
    claims = [(sentence, passages) for sentence, passages in claims if passages]
    if not claims:
        return set()
    said = {sentence: CITATION.sub("", sentence) for sentence, _ in claims}
    texts = list(dict.fromkeys([*said.values(), *(p for _, passages in claims for p in passages)]))
    vector = dict(zip(texts, index.embed(texts), strict=True))

    def best(sentence: str, passages: list[str]) -> float:
        claim = vector[said[sentence]]
        return max(sum(a * b for a, b in zip(claim, vector[p], strict=True)) for p in passages)

    return {s for s, passages in claims if best(s, passages) >= settings.GROUNDING_MIN_SIMILARITY}
