"""End to end against the real vLLM CPU server: upload → worker → ready → streamed, cited answer."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assistant.models import QueryRecord
from ingestion.models import Document
from tests.conftest import login, read_events, wait_for_documents
from tests.factories import make_pdf

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.embedded]

PAGES = [
    "Northwind travel handbook.\nThis handbook explains travel rules for all staff.",
    "Meal allowance.\nThe daily meal allowance for business travel abroad is 60 euros.",
    "Lodging.\nHotels are reimbursed up to 140 euros per night.",
]


def test_a_question_gets_a_streamed_cited_answer_from_vllm(people, celery_worker, real_llm) -> None:
    owner = login(people.owner)
    pdf = SimpleUploadedFile("travel.pdf", make_pdf(PAGES))
    owner.post(reverse("ingestion:upload", args=[people.legal.pk]), {"files": [pdf]})
    document = Document.objects.get()
    wait_for_documents(document)
    assert document.status == Document.Status.READY and document.pages == 3

    response = login(people.teammate).post(
        reverse("chat:ask_new"), {"question": "What is the daily meal allowance abroad?"}
    )
    events = read_events(response)
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) >= 3, events  # streamed as the model produced it, not in one piece
    assert events[-1][0] == "done", events[-1]
    html = events[-1][1]["html"]
    file_url = reverse("ingestion:document_file", args=[document.pk])
    assert f'href="{file_url}#page=2"' in html  # the cited source is the page with the answer

    record = QueryRecord.objects.get()
    assert record.outcome == QueryRecord.Outcome.ANSWERED
    # The stored answer is the streamed one, less any citation of a source that was not given.
    assert record.grounding.get("model_answer", record.answer) == "".join(tokens)
    assert record.retrieved[0]["document_id"] == document.pk
    assert record.retrieved[0]["page"] == 2
    assert record.completion_tokens and record.first_token_ms is not None
    assert record.model == "SmolLM2-135M-Instruct"


def test_readyz_is_ready_with_the_real_model(db, client, real_llm) -> None:
    response = client.get(reverse("readyz"))
    assert response.status_code == 200, response.json()
