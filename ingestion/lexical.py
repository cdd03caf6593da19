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
    from nltk.stem.api import StemmerI

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# Each language's function words (after Snowball's lists, kept small): they carry no topic and
# only make vectors longer; content words are never dropped. They also tell the languages apart.
_STOPWORDS = {
    "english": """
    a an and are as at be but by for if in into is it no not of on or such that the their then
    there these they this to was will with i me my we our you your he him his she her its them
    what which who whom do does did have has had been being were am from so than too very can
    just should would could about above after again against all any both each few more most
    other some own same only over under up down out off once here when where why how""",
    "spanish": """
    de la que el en y a los del se las por un para con no una su al lo como más pero sus le ya
    o este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo
    nos durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué
    unos yo otro otras otra él tanto esa estos mucho quienes nada muchos cual poco ella estar
    estas algunas algo nosotros mi mis tú te ti tu tus ellas nosotras vosotros os mío mía
    es son fue era está están ha han he hemos cuál cuáles cuánto cuántos cuántas cómo dónde
    soy eres somos sido estoy estás estamos estaba has hay había tengo tienes tiene tenemos
    tienen tenía""",
    "german": """
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer auch
    auf aus bei bin bis bist da damit dann der den des dem die das dass du dein deine durch ein
    eine einem einen einer eines er es euer eure für hatte hatten hab habe haben hat hier hin
    ich ihr ihre ihm ihn im in ist jede jedem jeden jeder jedes kann kein keine können man
    mein meine mich mir mit muss nach nicht nichts noch nun nur ob oder ohne sehr sein seine
    sich sie sind so soll über um und uns unser unter vom von vor war waren was weil welche
    welcher welches wenn werde werden wie wieder will wir wird wo zu zum zur viele viel wann
    bist seid wurde wurden gewesen hast habt""",
    "french": """
    au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me
    même mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te
    tes toi ton tu un une vos votre vous c d j l à m n s t y été être avoir ai as avons avez
    ont est sont était étaient sera seront fait cette cet quel quelle quels quelles combien
    comment où quand pourquoi très plus aussi leurs dont ici là suis es sommes êtes étais
    ai avais avait avons eu""",
}
STOPWORDS = {language: frozenset(words.split()) for language, words in _STOPWORDS.items()}
LANGUAGES = {"en": "english", "es": "spanish", "de": "german", "fr": "french"}
ELISION = re.compile(r"^(?:qu|[cdjlmnst])'")  # French l'offre, d'un, qu'il: the word follows
MAX_TERM_CHARS = 40  # longer "words" are noise (hashes, base64): they never match a query


def language_of(text: str, unclear: str = "english") -> str:
    """The Snowball name of the text's language, by which list its words hit most; English
    unless another clearly wins (two hits at least and more than English's), so short or
    unusual English text (tables, headings) keeps the English stems it always had. Text with
    fewer than two hits in any list is `unclear`'s (English unless the caller knows better)."""
    words = [w.replace("’", "'") for w in WORD.findall(text.lower())]
    hits = {language: sum(w in stop for w in words) for language, stop in STOPWORDS.items()}
    best = max(hits, key=hits.__getitem__)
    if hits[best] < 2:
        return unclear
    return best if hits[best] > hits["english"] else "english"


@cache
def stemmer(language: str) -> "StemmerI":
    from nltk.stem.snowball import SnowballStemmer

    return SnowballStemmer(language)


@lru_cache(maxsize=200_000)
def stem(word: str, language: str = "english") -> str:
    return stemmer(language).stem(word)


def terms(text: str, language: str | None = None) -> list[str]:
    """Lower-cased, stop words dropped, Snowball-stemmed in the text's language (detected when
    not given); numbers are kept as they are."""
    language = language or language_of(text)
    stop = STOPWORDS[language]
    words = [w.replace("’", "'") for w in WORD.findall(text.lower())]
    if language == "french":
        words = [ELISION.sub("", w) for w in words]
    return [stem(w, language) for w in words if w not in stop and len(w) <= MAX_TERM_CHARS]


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
