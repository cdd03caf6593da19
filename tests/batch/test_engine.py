"""The batch engine end to end: real documents, index and audit chain, a fake vLLM at the HTTP
edge that answers each request's JSON schema (and counts how many it answers at once)."""

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.http import Http404
from django.utils import timezone

from assistant import audit
from assistant.audit import trail
from assistant.audit.models import AuditEvent, QueryRecord
from assistant.batch import jobs, work
from assistant.batch.models import BatchJob, BatchResult, BatchRun
from assistant.batch.schema import BadSpec
from ingestion import documents as ingestion_documents
from ingestion.models import Document
from tests.factories import ingest_now, make_document, make_user, remove_deleted

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]
Run, Result = BatchRun.Status, BatchResult.Status

DOCUMENTS = {
    "invoice.txt": "Invoice 2024-17 from Northwind Traders.\nTotal due: 1200 euros.\n"
    "Payment is due on 2024-03-31 by bank transfer.",
    "contract.txt": "Service agreement between Contoso and Fabrikam.\nThe agreement renews "
    "on 2025-01-01. The annual fee is 50000 dollars.",
    "memo.txt": "Internal memo about the office move.\nStaff move to the new building in the "
    "spring; desks are assigned by team.",
}
FIELDS = [
    {"name": "total", "type": "number", "description": "the total amount due"},
    {"name": "due date", "type": "date", "description": "when payment is due"},
    {"name": "counterparty", "type": "text"},
]
LABELS = [
    {"name": "Invoice", "description": "a bill to pay"},
    {"name": "Contract", "description": "an agreement between parties"},
    {"name": "Other", "description": ""},
]


def answer(body: dict) -> str:
    """What a well-behaved model would say, shaped by the request's schema. The memo states
    no amount: its total (777) is made up, for the grounding check to catch."""
    schema = body["response_format"]["json_schema"]["schema"]
    text = body["messages"][-1]["content"]
    properties = schema["properties"]
    if "label" in properties:
        label = "Invoice" if "Invoice" in text else "Contract" if "agreement" in text else "Other"
        return json.dumps({"label": label, "sources": [1]})
    if "summary" in properties:
        return json.dumps({"summary": "A document about " + text[12:40], "sources": [1]})
    stated = {"1200": 1200, "1300": 1300, "50000": 50000.0, "60000": 60000.0}
    total = next((n for words, n in stated.items() if words in text), 777)
    due = "2024-03-31" if "2024-03-31" in text else None
    return json.dumps(
        {
            "total": {"value": total, "sources": [1]},
            "due date": {"value": due, "sources": [1]},
            "counterparty": {"value": "Northwind" if "Northwind" in text else None, "sources": []},
        }
    )


@pytest.fixture
def fake(fake_llm, settings):
    settings.BATCH_CONCURRENCY = 4
    settings.LLM_READ_TIMEOUT = 5.0
    fake_llm.reply = answer
    return fake_llm


@pytest.fixture
def documents(people):
    made = {}
    for name, text in DOCUMENTS.items():
        document = make_document(people.legal, name, text.encode(), user=people.owner)
        ingest_now(document.pk)
        document.refresh_from_db()
        made[document.title] = document
    return made


def make_job(people, kind: str = "extract", **spec: object) -> BatchJob:
    defaults = {"extract": {"fields": FIELDS}, "classify": {"labels": LABELS}}
    return jobs.create_job(
        people.owner,
        name=f"{kind} job",
        kind=kind,
        collection_ids=[people.legal.pk],
        spec=spec or defaults.get(kind, {"length": "short", "audience": "managers"}),
    )


def run_all(job: BatchJob, user, **kwargs: object) -> BatchRun:
    run = jobs.start(job, user, **kwargs)
    jobs.run_now(run.pk)
    run.refresh_from_db()
    return run


def by_title(run: BatchRun) -> dict[str, BatchResult]:
    return {r.document_title: r for r in run.results.all()}


def test_an_extract_job_fills_every_field_with_the_passages_it_came_from(
    people, documents, fake
) -> None:
    run = run_all(make_job(people), people.owner)

    assert run.status == Run.DONE
    invoice = by_title(run)["invoice"]
    assert invoice.status == Result.DONE
    assert invoice.cells["total"]["value"] == 1200
    assert invoice.cells["due date"]["value"] == "2024-03-31"
    passage = invoice.cells["total"]["passages"][0]
    assert passage["document_id"] == documents["invoice"].pk
    assert passage["page"] == 1 and passage["chunk_no"] == 0 and "1200" in passage["text"]
    assert invoice.cells["total"]["flags"] == [] and invoice.cells["due date"]["flags"] == []
    # A value that names no source still shows the passages found for its field.
    assert invoice.cells["counterparty"]["passages"]
    assert jobs.columns(run) == ["total", "due date", "counterparty"]


def test_a_number_in_no_cited_passage_is_flagged(people, documents, fake) -> None:
    run = run_all(make_job(people), people.owner)

    memo = by_title(run)["memo"]
    assert memo.cells["total"]["value"] == 777
    assert memo.cells["total"]["flags"] == ["not_in_passages"]
    assert memo.cells["due date"] == {**memo.cells["due date"], "value": None, "flags": []}
    assert by_title(run)["contract"].cells["total"]["flags"] == []  # 50000.0 is "50000 dollars"
    assert jobs.progress(run).flagged == 1


def test_a_classify_job_labels_each_document(people, documents, fake) -> None:
    run = run_all(make_job(people, "classify"), people.owner)

    labels = {title: r.cells["label"]["value"] for title, r in by_title(run).items()}
    assert labels == {"invoice": "Invoice", "contract": "Contract", "memo": "Other"}
    assert by_title(run)["contract"].cells["label"]["passages"][0]["page"] == 1


def test_a_multi_label_job_returns_a_list(people, documents, fake) -> None:
    fake.reply = lambda body: json.dumps({"labels": ["Invoice", "Invoice"], "sources": [1]})
    run = run_all(make_job(people, "classify", labels=LABELS, multi=True), people.owner)

    assert by_title(run)["memo"].cells["labels"]["value"] == ["Invoice"]


def test_a_summarise_job_writes_a_summary_per_document(people, documents, fake) -> None:
    run = run_all(make_job(people, "summarise"), people.owner)

    summary = by_title(run)["memo"].cells["summary"]
    assert summary["value"].startswith("A document about")
    assert summary["passages"][0]["document_id"] == documents["memo"].pk
    assert "for managers" in fake.requests[0]["messages"][0]["content"]


def test_each_request_carries_the_json_schema_as_response_format(people, documents, fake) -> None:
    run = run_all(make_job(people), people.owner)

    assert len(fake.requests) == 3
    for body in fake.requests:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "batch_extract", "schema": run.schema, "strict": True},
        }
        assert body["temperature"] == 0 and not body.get("stream")
    total = run.schema["properties"]["total"]["properties"]["value"]
    assert total == {"anyOf": [{"type": "number"}, {"type": "null"}]}


def test_requests_to_the_model_run_concurrently(people, documents, fake) -> None:
    fake.delay = 0.5
    run = run_all(make_job(people), people.owner)

    assert run.status == Run.DONE
    assert fake.max_active >= 2


def test_an_answer_that_does_not_follow_the_schema_fails_that_document(
    people, documents, fake
) -> None:
    fake.reply = lambda body: json.dumps({"label": "Nonsense", "sources": [1]})
    run = run_all(make_job(people, "classify"), people.owner)

    result = run.results.first()
    assert result.status == Result.FAILED and "not one of the choices" in result.error
    assert run.status == Run.FAILED  # every document failed
    assert result.record.outcome == QueryRecord.Outcome.ERROR


def test_each_result_is_a_chained_audit_record_and_the_chain_verifies(
    people, documents, fake
) -> None:
    job = make_job(people)
    run = run_all(job, people.owner)

    records = QueryRecord.objects.filter(channel=QueryRecord.Channel.BATCH)
    assert records.count() == 3
    invoice = by_title(run)["invoice"].record
    assert invoice.username == "owner" and invoice.model == settings.LLM_MODEL
    assert run.model == settings.LLM_NAME and invoice.endpoint == "on_premises"
    assert invoice.policy["model"] == run.model
    assert invoice.params["batch_run"] == run.pk and invoice.params["schema"] == run.schema
    assert invoice.document_ids == [documents["invoice"].pk]
    assert invoice.scope == [{"id": people.legal.pk, "name": "Legal"}]
    assert invoice.retrieved[0]["chunk_no"] == 0 and json.loads(invoice.answer)["total"]
    assert invoice.prompt[0]["role"] == "system" and "total" in invoice.question
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"batch_job_created", "batch_run_started", "batch_run_finished"} <= actions
    count, problem = audit.verify()
    assert problem is None and count >= 6


def test_defining_and_editing_a_job_are_audited_with_what_it_asks(people) -> None:
    job = jobs.create_job(
        people.owner,
        name="Totals",
        kind="extract",
        collection_ids=[people.legal.pk],
        spec={"fields": FIELDS},
        instruction="Amounts in euros.",
    )
    jobs.update_job(
        job,
        people.owner,
        name="Totals",
        collection_ids=[people.legal.pk],
        spec={"fields": FIELDS[:1]},
        instruction="Amounts in dollars.",
    )

    created, edited = AuditEvent.objects.filter(action="batch_job_created").order_by("pk")
    assert created.detail["instruction"] == "Amounts in euros." and "edited" not in created.detail
    assert [f["name"] for f in created.detail["spec"]["fields"]] == [
        "total",
        "due date",
        "counterparty",
    ]
    assert edited.detail["edited"] is True and edited.detail["instruction"] == "Amounts in dollars."
    assert [f["name"] for f in edited.detail["spec"]["fields"]] == ["total"]
    assert edited.detail["collections"] == [people.legal.pk] and edited.detail["kind"] == "extract"


def test_batch_records_follow_the_collections_retention(people, documents, fake) -> None:
    run_all(make_job(people), people.owner)
    people.legal.retention_days = 1
    people.legal.save()
    later = timezone.now() + timedelta(days=2)
    records = QueryRecord.objects.filter(channel=QueryRecord.Channel.BATCH)
    assert len(trail.expired(records, later)) == 3


def test_a_pause_lets_no_new_document_start_and_resume_finishes_the_rest(
    people, documents, fake, settings
) -> None:
    settings.BATCH_CONCURRENCY = 1
    job = make_job(people)
    run = jobs.start(job, people.owner)

    def pause_after_the_first(body: dict) -> str:
        BatchRun.objects.filter(pk=run.pk).update(status=Run.PAUSED)
        return answer(body)

    fake.reply = pause_after_the_first
    jobs.run_now(run.pk)
    run.refresh_from_db()
    progress = jobs.progress(run)
    assert (run.status, progress.done, progress.pending) == (Run.PAUSED, 1, 2)
    assert progress.eta_seconds is None and progress.tokens == 120

    fake.reply = answer
    assert jobs.resume(run, people.owner)
    jobs.run_now(run.pk)
    run.refresh_from_db()
    assert run.status == Run.DONE and jobs.progress(run).done == 3
    assert len(fake.requests) == 3  # the finished document was not asked again


def test_cancel_stops_the_run_and_keeps_what_finished(people, documents, fake, settings) -> None:
    settings.BATCH_CONCURRENCY = 1
    run = jobs.start(make_job(people), people.owner)

    def cancel_on_the_first(body: dict) -> str:
        jobs.cancel(BatchRun.objects.get(pk=run.pk), people.owner)
        return answer(body)

    fake.reply = cancel_on_the_first
    jobs.run_now(run.pk)
    run.refresh_from_db()
    progress = jobs.progress(run)
    assert run.status == Run.CANCELLED and run.finished_at
    assert (progress.done, progress.cancelled) == (1, 2)
    assert not jobs.resume(run, people.owner) and not run.can_resume
    assert AuditEvent.objects.filter(action="batch_run_cancelled").exists()


def test_a_run_whose_worker_died_resumes_without_redoing_finished_documents(
    people, documents, fake
) -> None:
    run = jobs.start(make_job(people), people.owner)
    first, second, third = run.results.order_by("position")
    # The worker died with the first document done and the second in hand.
    first.status, first.cells = Result.DONE, {"total": {"value": 1, "passages": [], "flags": []}}
    first.save()
    BatchResult.objects.filter(pk=second.pk).update(status=Result.RUNNING)
    lease_until = timezone.now() + timedelta(seconds=60)
    BatchRun.objects.filter(pk=run.pk).update(
        status=Run.RUNNING, lease_owner="dead-worker", lease_until=lease_until
    )

    assert work.process(run.pk) > 0  # its lease still runs: nobody takes the run yet
    assert jobs.resume_stuck() == 0
    BatchRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert jobs.resume_stuck() == 1  # what the worker's start calls

    jobs.run_now(run.pk)
    run.refresh_from_db()
    assert run.status == Run.DONE
    assert len(fake.requests) == 2  # the second and third documents only
    first.refresh_from_db()
    assert first.cells["total"]["value"] == 1


def test_documents_the_owner_can_no_longer_read_are_not_read(
    people, documents, fake, settings
) -> None:
    settings.BATCH_CONCURRENCY = 1
    people.teammate.user_permissions.add(Permission.objects.get(codename="run_batch_jobs"))
    job = jobs.create_job(
        people.teammate,
        name="Invoices",
        kind="extract",
        collection_ids=[people.legal.pk],
        spec={"fields": FIELDS},
    )
    run = jobs.start(job, people.teammate)

    def revoke_on_the_first(body: dict) -> str:
        people.teammate.groups.clear()  # removed from Legal while the run goes on
        return answer(body)

    fake.reply = revoke_on_the_first
    jobs.run_now(run.pk)
    run.refresh_from_db()
    statuses = sorted(run.results.values_list("status", flat=True))
    assert statuses == [Result.DONE, Result.SKIPPED, Result.SKIPPED]
    assert len(fake.requests) == 1
    skipped = run.results.filter(status=Result.SKIPPED).first()
    assert "can no longer read" in skipped.error and skipped.record is None
    # Nor does the table show the teammate what they may no longer read.
    assert not jobs.results(people.teammate, run).exists()


def test_only_managers_and_holders_of_the_permission_define_jobs_on_what_they_read(
    people,
) -> None:
    assert jobs.can_run_batch_jobs(people.owner)  # manages Legal
    assert not jobs.can_run_batch_jobs(people.teammate)
    with pytest.raises(BadSpec):
        make_job_for(people.outsider, people.legal.pk)
    people.outsider.user_permissions.add(Permission.objects.get(codename="run_batch_jobs"))
    people.outsider = type(people.outsider).objects.get(pk=people.outsider.pk)  # perm cache
    assert jobs.can_run_batch_jobs(people.outsider)
    with pytest.raises(BadSpec):
        make_job_for(people.outsider, people.legal.pk)  # granted to Legal, not to Sales
    assert make_job_for(people.outsider, people.sales.pk).owner == people.outsider
    other = make_user("other")
    with pytest.raises(Http404):
        jobs.own_job(other, BatchJob.objects.get().pk)


def make_job_for(user, collection_id: int) -> BatchJob:
    return jobs.create_job(
        user, name="x", kind="classify", collection_ids=[collection_id], spec={"labels": LABELS}
    )


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("classify", {"labels": [{"name": "Only one"}]}),
        ("classify", {"labels": [{"name": "A"}, {"name": "a"}]}),
        ("extract", {"fields": [{"name": "x", "type": "colour"}]}),
        ("extract", {"fields": [{"name": "x", "type": "choice", "choices": ["one"]}]}),
        ("summarise", {"length": "endless"}),
        ("translate", {}),
    ],
)
def test_a_spec_that_cannot_run_is_refused(people, kind: str, spec: dict) -> None:
    with pytest.raises(BadSpec):
        jobs.create_job(
            people.owner, name="x", kind=kind, collection_ids=[people.legal.pk], spec=spec
        )


def test_a_preview_runs_on_the_first_three_documents(people, documents, fake) -> None:
    extra = make_document(people.legal, "fourth.txt", b"Invoice 9. Total due: 5 euros.")
    ingest_now(extra.pk)
    run = run_all(make_job(people), people.owner, preview=True)

    assert run.preview and run.results.count() == 3 and run.status == Run.DONE


def test_two_runs_compare_by_document_and_field(people, documents, fake) -> None:
    job = make_job(people)
    first = run_all(job, people.owner)
    fake.reply = lambda body: answer(body).replace("1200", "1300")
    second = run_all(job, people.owner)

    changes = jobs.compare(first, second)
    assert [(c.title, c.column, c.before, c.after, c.reason) for c in changes] == [
        ("invoice", "total", 1200, 1300, "changed")
    ]
    assert jobs.previous_run(second) == first


def upload_now(people, name: str, text: str) -> Document:
    document = make_document(people.legal, name, text.encode(), user=people.owner)
    ingest_now(document.pk)
    return document


def test_a_rerun_after_new_versions_shows_their_changed_values(people, documents, fake) -> None:
    """A new version is a new row and retires the old one: runs still match it by document."""
    job = make_job(people)
    first = run_all(job, people.owner)
    upload_now(people, "invoice.txt", DOCUMENTS["invoice.txt"].replace("1200", "1300"))
    upload_now(people, "contract.txt", DOCUMENTS["contract.txt"].replace("50000", "60000"))
    assert not Document.objects.filter(pk=documents["invoice"].pk).exists()  # retired
    assert first.results.filter(document=None).count() == 2

    second = run_all(job, people.owner)

    changes = jobs.compare(first, second)
    totals = [(c.title, c.before, c.after) for c in changes if c.column == "total"]
    assert sorted(totals) == [("contract", 50000.0, 60000.0), ("invoice", 1200, 1300)]
    assert {c.reason for c in changes} == {"document_changed"}
    assert {c.title for c in changes} == {"invoice", "contract"}  # the memo did not change
    assert len(changes) == 2 * len(FIELDS)  # a new version lists every column


def test_a_rerun_lists_documents_added_and_removed_one_by_one(people, documents, fake) -> None:
    job = make_job(people)
    first = run_all(job, people.owner)
    upload_now(people, "letter.txt", "A letter to Northwind about the 1200 euros invoice.")
    for title in ("memo", "contract"):
        ingestion_documents.delete(documents[title], people.owner)
    remove_deleted()

    second = run_all(job, people.owner)

    changes = jobs.compare(first, second)
    assert sorted((c.title, c.reason) for c in changes) == [
        ("contract", "removed"),
        ("letter", "added"),
        ("memo", "removed"),
    ]


def test_a_model_server_that_is_down_stops_the_run_for_a_later_resume(
    people, documents, fake
) -> None:
    fake.mode = "error"
    run = run_all(make_job(people), people.owner)

    assert run.status == Run.FAILED and run.can_resume
    assert all(r.status == Result.FAILED for r in run.results.all())
    assert len(fake.requests) == 3 * work.MAX_ATTEMPTS  # each document, a few times

    fake.mode = "stream"
    assert jobs.resume(run, people.owner)
    jobs.run_now(run.pk)
    run.refresh_from_db()
    assert run.status == Run.DONE and jobs.progress(run).done == 3


def test_a_started_run_is_worked_by_the_celery_worker(
    people, documents, fake, celery_worker
) -> None:
    fake.delay = 0.3
    run = jobs.start(make_job(people), people.owner)  # enqueued after commit, by task name

    deadline = timezone.now() + timedelta(seconds=60)
    while not run.is_finished and timezone.now() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.status == Run.DONE and jobs.progress(run).done == 3
    assert fake.max_active >= 2  # concurrent inside the one task


FILLER = [
    "Heavy rain is expected over the northern hills, with strong winds along the coast and "
    "snow above eight hundred metres by the weekend.",
    "Knead the dough for ten minutes, let it rise in a warm place for an hour, then bake the "
    "loaves at two hundred degrees until golden.",
    "The home team scored twice in the second half and the goalkeeper saved a late penalty "
    "to keep the lead until the final whistle.",
    "Migrating birds rest on the lake in autumn; herons, geese and ducks feed in the reeds "
    "before flying south for the winter.",
]


def test_a_field_no_word_of_the_document_matches_still_finds_its_passage(people) -> None:
    """Passages are chosen by words and by meaning: in a long document, a field whose words
    appear nowhere in it ("counterparty: the other company that signed") still gets the
    paragraph naming the parties, not just the opening; the passage limit holds."""
    parties = (
        "This agreement is made between Acme Logistics Ltd and Globex Shipping GmbH, the two "
        "parties to it, on the terms below."
    )
    paragraphs = [FILLER[n % len(FILLER)] for n in range(60)]
    paragraphs.insert(30, parties)
    document = make_document(people.legal, "long.txt", "\n\n".join(paragraphs).encode())
    ingest_now(document.pk)
    document.refresh_from_db()
    assert document.chunks > settings.BATCH_PASSAGES  # long enough to have to choose
    field = {"name": "counterparty", "type": "text", "description": "the other company that signed"}
    passages, by_query = work.read_passages(document, "extract", {"fields": [field]})
    assert len(passages) <= settings.BATCH_PASSAGES
    best = passages[by_query[0][0] - 1]
    assert "Globex Shipping" in best["text"] and best["chunk_no"] > 0
