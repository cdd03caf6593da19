"""Questions in Spanish, German and French are searched, answered and checked in their own
language: Snowball stemming and stop words per language, and the model told which to use."""

import pytest

from assistant import grounding, prompts
from ingestion import lexical

pytestmark = pytest.mark.embedded


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How many days of annual leave do I get?", "english"),
        ("¿Cuántos días de vacaciones tengo al año?", "spanish"),
        ("Wie viele Urlaubstage habe ich im Jahr?", "german"),
        ("Combien de jours de congés ai-je par an ?", "french"),
        ("Quarterly revenue table: 1,204 / 998 / 1,377", "english"),  # no function words
    ],
)
def test_the_language_of_a_text_is_told_by_its_function_words(text: str, language: str) -> None:
    assert lexical.language_of(text) == language


def test_each_language_is_stemmed_with_its_own_snowball_stemmer_and_stop_words() -> None:
    assert lexical.terms("Los trabajadores tienen vacaciones") == ["trabaj", "vacacion"]
    assert lexical.terms("El trabajador y sus vacaciones") == ["trabaj", "vacacion"]
    assert lexical.terms("Die Mitarbeiter haben Urlaubstage und der Urlaubstag") == [
        "mitarbeit",
        "urlaubstag",
        "urlaubstag",
    ]
    assert lexical.terms("L'entreprise et les congés des salariés") == [
        "entrepris",
        "cong",
        "salari",
    ]
    # English is stemmed as it always was: existing indexes keep their term ids.
    assert lexical.terms("The Runners were RUNNING") == ["runner", "run"]


def test_a_spanish_question_finds_the_spanish_passage_by_its_stems() -> None:
    question = set(lexical.query_vector("¿Cuántas vacaciones tienen los trabajadores?")[0])
    passage = set(lexical.document_vector("Cada trabajador tiene treinta días de vacación.")[0])
    english = set(lexical.document_vector("Each worker has thirty days of leave.")[0])
    assert len(question & passage) == 2 and not question & english


def test_the_model_is_told_to_answer_in_the_language_of_the_question() -> None:
    spanish = prompts.build_messages("¿Cuántos días?", [], [], "spanish")[0]["content"]
    assert spanish.endswith("The question is in Spanish: answer in Spanish.")
    assert spanish.startswith(prompts.SYSTEM)
    # The English prompt is exactly the one the model was tried with.
    assert prompts.build_messages("How many days?", [], [])[0]["content"] == prompts.SYSTEM


def test_claims_in_another_language_are_checked_with_its_stems(monkeypatch) -> None:
    sources = [{"n": 1, "text": "Los trabajadores disfrutan de vacaciones pagadas cada verano."}]
    supported = "Cada trabajador disfruta de vacación pagada en verano [1]."
    invented = "La empresa regala coches eléctricos nuevos a directivos [1]."
    checked = grounding.check(f"{supported} {invented}", sources, "spanish")
    assert [entry["sentence"] for entry in checked.unsupported] == [invented]
    # The word check alone (no embedder) places the supported sentence only with Spanish stems.
    monkeypatch.setattr(grounding, "placed_by_meaning", lambda claims: set())
    by_number = {1: sources[0]["text"]}
    assert grounding.unsupported_claims(supported, by_number, "spanish") == []


# Short questions have too few function words to tell their language: they fall back to
# English, and the passages must then be stemmed in English too, not in their own language.
SHORT_QUESTIONS = [
    (
        "¿Dieta diaria en Francia?",
        "Los trabajadores desplazados a Francia reciben una dieta diaria de sesenta euros por"
        " cada día de viaje.",
        "Los trabajadores desplazados reciben una dieta diaria de sesenta euros [1].",
        "La empresa regala coches eléctricos nuevos a directivos [1].",
    ),
    (
        "Tagegeld in Frankreich?",
        "Mitarbeiter auf Dienstreisen in Frankreich erhalten ein Tagegeld von sechzig Euro für"
        " jeden Reisetag.",
        "Mitarbeiter auf Dienstreisen erhalten ein Tagegeld von sechzig Euro [1].",
        "Die Firma verschenkt neue Elektroautos an Führungskräfte [1].",
    ),
    (
        "Indemnité journalière en Espagne ?",
        "Les salariés en déplacement en Espagne reçoivent une indemnité journalière de soixante"
        " euros par jour de voyage.",
        "Les salariés en déplacement reçoivent une indemnité journalière de soixante euros [1].",
        "L'entreprise offre des voitures électriques neuves aux dirigeants [1].",
    ),
]


@pytest.mark.parametrize(
    ("question", "passage", "supported", "invented"), SHORT_QUESTIONS, ids=["es", "de", "fr"]
)
def test_answers_to_short_questions_are_checked_in_one_language_on_both_sides(
    monkeypatch, question: str, passage: str, supported: str, invented: str
) -> None:
    language = lexical.language_of(question)
    assert language == "english"  # too short to tell
    # The word check alone (no embedder): the claim and its passage share stems only when
    # both are stemmed in the same language.
    monkeypatch.setattr(grounding, "placed_by_meaning", lambda claims: set())
    checked = grounding.check(f"{supported} {invented}", [{"n": 1, "text": passage}], language)
    assert [entry["sentence"] for entry in checked.unsupported] == [invented]


@pytest.mark.parametrize(
    ("question", "reader", "language"),
    [
        ("¿Dieta diaria en Francia?", "es", "spanish"),  # too short to tell: the reader's
        ("Tagegeld in Frankreich?", "de", "german"),
        ("Indemnité journalière en Espagne ?", "fr", "french"),
        ("Tagegeld in Frankreich?", "en", "english"),
        ("How many days of annual leave do I get?", "de", "english"),  # clear: its own
        ("¿Cuántos días de vacaciones tengo al año?", "en", "spanish"),
    ],
)
def test_a_question_too_short_to_tell_is_answered_in_its_readers_language(
    question: str, reader: str, language: str
) -> None:
    from django.utils import translation

    from assistant import chat

    with translation.override(reader):
        assert chat.question_language(question) == language
