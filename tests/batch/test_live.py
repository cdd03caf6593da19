"""Structured outputs against the real vLLM CPU server: whatever the 135M model makes of the
document, its answer parses and follows the job's schema."""

import json

import pytest

from assistant.batch import jobs, schema
from assistant.batch.models import BatchResult, BatchRun
from tests.factories import ingest_now, make_document

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.embedded]

INVOICE = (
    b"Invoice 2024-17 from Northwind Traders to Contoso Ltd.\n"
    b"Total due: 1200 euros. Payment is due on 2024-03-31 by bank transfer.\n"
)


def test_the_real_server_answers_in_the_jobs_schema(people, real_llm) -> None:
    document = make_document(people.legal, "invoice.txt", INVOICE, user=people.owner)
    ingest_now(document.pk)
    fields = [
        {"name": "total", "type": "number", "description": "total amount due"},
        {"name": "due date", "type": "date", "description": "payment due date"},
        {"name": "paid by transfer", "type": "yes_no"},
        {"name": "currency", "type": "choice", "choices": ["euros", "dollars"]},
    ]
    job = jobs.create_job(
        people.owner,
        name="Invoices",
        kind="extract",
        collection_ids=[people.legal.pk],
        spec={"fields": fields},
    )
    run = jobs.start(job, people.owner)
    jobs.run_now(run.pk)
    run.refresh_from_db()

    result = run.results.get()
    assert result.status == BatchResult.Status.DONE, result.error
    assert run.status == BatchRun.Status.DONE
    assert schema.errors(run.schema, json.loads(result.record.answer)) == []
    assert set(result.cells) == {"total", "due date", "paid by transfer", "currency"}
    assert result.completion_tokens and result.record.model == "SmolLM2-135M-Instruct"
