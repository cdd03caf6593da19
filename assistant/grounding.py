"""Keep an answer tied to its evidence, after generation.

Citation markers that point to no retrieved source are removed; every sentence that makes a claim
is checked against the passages it cites (or, uncited, against every source): it is supported
when enough of its content words appear in one passage, or when it is close to one in the
embedder's space. Unsupported sentences are flagged, never silently dropped: the reader decides.
"""

import re
from dataclasses import asdict, dataclass, field

from django.conf import settings

from assistant import prompts
from ingestion import index, lexical

CITATION = re.compile(r"\s?\[(\d{1,3})\]")
# A sentence ends at . ! or ? followed by a space (not "14.5"), or a line break; a citation
# written after the full stop still belongs to the sentence before it.
BOUNDARY = re.compile(r"(?<=[.!?])\s+(?!\[\d)|\n+")
MIN_CLAIM_TERMS = 3  # shorter sentences ("Yes.", "Here is what I found:") claim nothing


@dataclass
class Grounding:
    answer: str  # the answer without dangling citations
    cited: list[int] = field(default_factory=list)
    dangling: list[int] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # sentences, as they appear in `answer`

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


def overlap(claim: set[str], passage: str) -> float:
    return len(claim & set(lexical.terms(passage))) / len(claim)


def check(answer: str, sources: list[dict]) -> Grounding:
    by_number = {s["n"]: prompts.source_text(s) for s in sources}
    text, dangling = drop_dangling(answer, set(by_number))
    result = Grounding(answer=text, dangling=dangling)
    claims: list[tuple[str, list[str]]] = []
    for sentence in sentences(text):
        cited = [int(n) for n in CITATION.findall(sentence)]
        result.cited.extend(n for n in cited if n not in result.cited)
        terms = set(lexical.terms(CITATION.sub("", sentence)))
        if len(terms) < MIN_CLAIM_TERMS:
            continue
        passages = [by_number[n] for n in cited] or list(by_number.values())
        if not any(overlap(terms, p) >= settings.GROUNDING_MIN_OVERLAP for p in passages):
            claims.append((sentence, passages))
    result.unsupported = [s for s, passages in claims if not _close(s, passages)]
    result.cited.sort()
    return result


def _close(sentence: str, passages: list[str]) -> bool:
    """The semantic check, only for sentences the lexical one could not place."""
    if not passages:
        return False
    vectors = index.embed([CITATION.sub("", sentence), *passages])
    claim, rest = vectors[0], vectors[1:]
    best = max(sum(a * b for a, b in zip(claim, p, strict=True)) for p in rest)
    return best >= settings.GROUNDING_MIN_SIMILARITY
