"""The API end to end against the real vLLM CPU server, with the official `openai` client: a
document ingested, a token made on its page, an answer streamed and not, with its sources."""

import openai
import pytest
from django.urls import reverse

from assistant.models import QueryRecord
from tests.factories import ingest_now, make_document, make_pdf
from tests.test_api import make_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.embedded]

PAGES = [
    "Northwind travel handbook.\nThis handbook explains travel rules for all staff.",
    "Meal allowance.\nThe daily meal allowance for business travel abroad is 60 euros.",
]
QUESTION = "What is the daily meal allowance abroad?"


def test_the_openai_client_gets_answers_with_sources_from_vllm(
    live_server, people, real_llm
) -> None:
    document = make_document(people.legal, "travel.pdf", make_pdf(PAGES))
    ingest_now(document.pk)
    client = openai.OpenAI(
        base_url=f"{live_server.url}/v1", api_key=make_token(people.teammate), max_retries=0
    )
    messages = [{"role": "user", "content": QUESTION}]

    completion = client.chat.completions.create(model="enclave", messages=messages, max_tokens=48)
    message = completion.choices[0].message
    assert message.content and completion.usage.completion_tokens <= 48
    [best, *_] = message.model_extra["sources"]
    assert (best["document_id"], best["page"]) == (document.pk, 2)
    page = reverse("ingestion:document_page", args=[document.pk, 2])
    assert best["url"].startswith(f"{live_server.url}{page}?chunk=")

    stream = client.chat.completions.create(
        model="enclave", messages=messages, max_tokens=32, temperature=0, stream=True
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 3  # streamed as the model wrote it, not in one piece
    final = chunks[-1].choices[0]
    assert final.finish_reason in ("stop", "length")
    assert final.delta.model_extra["sources"][0]["document_id"] == document.pk

    first, second = QueryRecord.objects.order_by("id")
    assert (first.channel, first.outcome, first.params["max_tokens"]) == ("api", "answered", 48)
    assert (second.params["max_tokens"], second.params["temperature"]) == (32, 0)
    assert second.grounding.get("model_answer", second.answer) == "".join(texts)
    assert second.model == "SmolLM2-135M-Instruct"
