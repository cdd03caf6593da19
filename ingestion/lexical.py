"""Lexical side of hybrid retrieval: text → stemmed terms → BM25-weighted sparse vectors.

A chunk's sparse vector holds BM25's saturated term frequency per term; Qdrant multiplies it by
the term's inverse document frequency at query time (the IDF modifier on the sparse vector), so
statistics stay right as documents come and go. A query's vector is 1.0 per distinct term. Term
ids are a stable hash of the stem, the same in every process and on every machine.
"""

import hashlib
import re
from collections import Counter
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from nltk.stem.snowball import EnglishStemmer

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# The usual English function words (Lucene's list plus a few pronouns): they carry no topic and
# only make vectors longer. Kept small on purpose; content words are never dropped.
_STOPWORDS = """
    a an and are as at be but by for if in into is it no not of on or such that the their then
    there these they this to was will with i me my we our you your he him his she her its them
    what which who whom do does did have has had been being were am from so than too very can
    just should would could about above after again against all any both each few more most
    other some own same only over under up down out off once here when where why how"""
STOPWORDS = frozenset(_STOPWORDS.split())
MAX_TERM_CHARS = 40  # longer "words" are noise (hashes, base64): they never match a query


@cache
def stemmer() -> "EnglishStemmer":
    from nltk.stem.snowball import EnglishStemmer

    return EnglishStemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return stemmer().stem(word)


def terms(text: str) -> list[str]:
    """Lower-cased, stop words dropped, Snowball-stemmed (numbers are kept as they are)."""
    words = (w.replace("’", "'") for w in WORD.findall(text.lower()))
    return [stem(w) for w in words if w not in STOPWORDS and len(w) <= MAX_TERM_CHARS]


@lru_cache(maxsize=200_000)
def term_id(term: str) -> int:
    # Python's hash() is salted per process; a truncated blake2b is stable everywhere.
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """BM25's term-frequency part, tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len)), per term."""
    counts = Counter(term_id(t) for t in terms(text))
    k1, b = settings.BM25_K1, settings.BM25_B
    norm = k1 * (1 - b + b * sum(counts.values()) / settings.BM25_AVG_TERMS)
    ids = sorted(counts)
    return ids, [counts[i] * (k1 + 1) / (counts[i] + norm) for i in ids]


def query_vector(text: str) -> tuple[list[int], list[float]]:
    ids = sorted({term_id(t) for t in terms(text)})
    return ids, [1.0] * len(ids)
