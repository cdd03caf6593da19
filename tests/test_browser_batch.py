"""Batch jobs in a real browser, one test per job type: define, preview, run, watch the progress,
open a cell's passage, export CSV and XLSX, find the audit record. A real Celery worker runs the
jobs; the model is a fake at the HTTP edge that answers each request's JSON schema."""

import csv
import io
import json
import os
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from playwright.sync_api import Page, expect

from assistant.batch import jobs
from tests.factories import ingest_now, make_document
from tests.test_browser import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The first three (by upload order) make the preview.
DOCUMENTS = {
    "invoice-a.txt": "Invoice A-17 from Northwind Traders. Total due: 1200 euros. "
    "Payment is due on 2024-03-31.",
    "invoice-b.txt": "Invoice B-9 from Contoso. Total due: 450 euros. "
    "Payment is due on 2024-05-15.",
    "contract.txt": "Service agreement between Contoso and Fabrikam. The annual fee is 50000 "
    "dollars. It renews on 2025-01-01.",
    "memo.txt": "Internal memo about the office move. Staff move to the new building in spring.",
    "policy.txt": "Travel policy. Every trip abroad needs approval from a manager first.",
}
AMOUNT = re.compile(r"(\d+) (?:euros|dollars)")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def answer(body: dict) -> str:
    """What a well-behaved model would say, in the shape the request's schema asks for. A
    document stating no amount gets a made-up total (777): the grounding check flags it."""
    properties = body["response_format"]["json_schema"]["schema"]["properties"]
    text = body["messages"][-1]["content"]
    if "label" in properties:
        label = "Invoice" if "Invoice" in text else "Contract" if "agreement" in text else "Other"
        return json.dumps({"label": label, "sources": [1]})
    if "summary" in properties:
        opening = next(s for s in ("Invoice", "Service", "Internal", "Travel") if s in text)
        return json.dumps({"summary": f"{opening} document, in brief.", "sources": [1]})
    amount, date = AMOUNT.search(text), DATE.search(text)
    return json.dumps(
        {
            "total": {"value": int(amount[1]) if amount else 777, "sources": [1]},
            "due date": {"value": date[0] if date else None, "sources": [1]},
        }
    )


@pytest.fixture
def mailroom(people, fake_llm, settings):
    """Legal holds five ingested documents; its admin may also read the audit trail."""
    settings.LLM_READ_TIMEOUT = 10.0
    fake_llm.reply = answer
    for name, text in DOCUMENTS.items():
        ingest_now(make_document(people.legal, name, text.encode(), user=people.owner).pk)
    people.owner.user_permissions.add(Permission.objects.get(codename="view_queryrecord"))
    return fake_llm


def define(page: Page, base: str, name: str, kind: str) -> None:
    sign_in(page, base, "owner")
    page.get_by_role("link", name="Batch jobs").click()
    page.get_by_role("link", name="New job").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Legal").check()
    page.get_by_role("combobox", name="Type", exact=True).select_option(label=kind)
    # Only the chosen type's fields show (static/enclave/batch.js).
    for other in {"Classify", "Extract", "Summarise"} - {kind}:
        expect(page.locator(f"fieldset[data-kind={other.lower()}]")).to_be_hidden()


def preview_then_run(page: Page, rows: int = 3) -> None:
    page.get_by_role("button", name="Save and preview").click()
    expect(page.locator("h1")).to_contain_text("Preview of")
    # The page polls while the run works, and reloads itself once it is done.
    expect(page.locator("#progress-text")).to_contain_text("3 of 3 documents done", timeout=60_000)
    expect(page.locator("table.results tbody tr")).to_have_count(rows)
    page.get_by_role("button", name="Run on all documents").click()
    expect(page.locator("h1")).to_contain_text("Run of")
    expect(page.locator("#progress-text")).to_contain_text("5 of 5 documents done", timeout=60_000)
    expect(page.locator("#progress progress")).to_have_attribute("value", "5")
    expect(page.locator("#progress")).not_to_have_attribute("hx-trigger", "every 2s")
    expect(page.locator("table.results tbody tr")).to_have_count(5)


def row(page: Page, title: str):
    return page.locator("table.results tbody tr", has=page.locator("th", has_text=title))


def export(page: Page, label: str) -> bytes:
    with page.expect_download() as download:
        page.get_by_role("link", name=label).click()
    with open(download.value.path(), "rb") as file:
        return file.read()


def open_audit_record(page: Page, title: str, expected: str) -> None:
    row(page, title).get_by_role("link", name="Record").click()
    expect(page.locator("h2:text-is('Answer') + blockquote")).to_contain_text(expected)
    page.go_back()


def test_an_admin_classifies_a_collection(page: Page, live_server, people, mailroom, celery_worker):
    base = live_server.url
    define(page, base, "Sort the mail", "Classify")
    labels = page.locator("fieldset[data-kind=classify] [data-row]")
    labels.nth(0).get_by_label("Label").fill("Invoice")
    labels.nth(0).get_by_label("Description (optional)").fill("a bill to pay")
    labels.nth(1).get_by_label("Label").fill("Contract")
    page.get_by_role("button", name="Add a label").click()
    labels.nth(3).get_by_label("Label").fill("Other")
    expect(labels).to_have_count(4)
    preview_then_run(page)

    expect(row(page, "invoice-a").locator("td").nth(1)).to_contain_text("Invoice")
    expect(row(page, "contract").locator("td").nth(1)).to_contain_text("Contract")
    # Filter, then sort by the label.
    page.get_by_label("Search").fill("Other")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.results tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Label", exact=True).click()
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Label")
    page.goto(page.url.split("?")[0])

    csv_rows = list(csv.reader(io.StringIO(export(page, "Export CSV").decode())))
    assert csv_rows[0][:4] == ["Document id", "Document", "Status", "Label"]
    assert {r[1]: r[3] for r in csv_rows[1:]}["invoice-b"] == "Invoice"
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(export(page, "Export XLSX"))).active
    assert sheet.max_row == 6 and sheet.cell(1, 4).value == "Label"

    row(page, "contract").get_by_role("link", name="p. 1").click()
    expect(page.locator("mark#passage")).to_contain_text("Service agreement")
    page.go_back()
    open_audit_record(page, "contract", "Contract")


def test_an_admin_extracts_fields_and_sees_a_made_up_value_flagged(
    page: Page, live_server, people, mailroom, celery_worker
):
    base = live_server.url
    define(page, base, "Amounts due", "Extract")
    fields = page.locator("fieldset[data-kind=extract] [data-row]")
    fields.nth(0).get_by_label("Field", exact=True).fill("total")
    fields.nth(0).get_by_label("Type").select_option(label="Number")
    fields.nth(1).get_by_label("Field", exact=True).fill("due date")
    fields.nth(1).get_by_label("Type").select_option(label="Date")
    # A refused definition comes back with its reason and what was typed.
    fields.nth(2).get_by_label("Field", exact=True).fill("status")
    fields.nth(2).get_by_label("Type").select_option(label="One of a list")
    page.get_by_role("button", name="Save and preview").click()
    expect(page.get_by_role("alert")).to_have_text("Field status needs 2 choices or more.")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Amounts due")
    fields.nth(2).get_by_label("Field", exact=True).fill("")  # the rows, rendered again
    preview_then_run(page)

    total = row(page, "invoice-a").locator("td").nth(1)
    expect(total).to_contain_text("1200")
    expect(row(page, "invoice-a").locator("td").nth(2)).to_contain_text("2024-03-31")
    expect(row(page, "memo").locator("td").nth(1)).to_contain_text("777")
    expect(row(page, "memo").locator(".flag")).to_have_text("⚠ not in its passages")
    expect(page.locator(".flag")).to_have_count(2)  # the memo and the policy state no amount
    page.get_by_label("Flagged only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.results tbody tr")).to_have_count(2)
    page.goto(page.url.split("?")[0])
    page.get_by_role("link", name="total", exact=True).click()  # sort by the amount
    expect(page.locator("table.results tbody tr").first).to_contain_text("invoice-b")

    csv_rows = list(csv.reader(io.StringIO(export(page, "Export CSV").decode())))
    by_title = {r[1]: r for r in csv_rows[1:]}
    assert by_title["invoice-a"][3:5] == ["1200", "2024-03-31"]
    assert "total: not in its passages" in by_title["memo"][6]
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(export(page, "Export XLSX"))).active
    assert sorted(r[3] for r in sheet.iter_rows(min_row=2, values_only=True)) == [
        450,
        777,
        777,
        1200,
        50000,
    ]

    total.get_by_role("link", name="p. 1").click()
    expect(page.locator("mark#passage")).to_contain_text("1200 euros")
    page.go_back()
    open_audit_record(page, "invoice-a", "1200")


def test_an_admin_summarises_pausing_and_resuming_the_run(
    page: Page, live_server, people, mailroom, celery_worker, settings
):
    base = live_server.url
    define(page, base, "Briefs", "Summarise")
    page.get_by_label("Length").select_option(label="Medium")
    page.get_by_label("Audience (optional)").fill("the board")
    preview_then_run(page)
    expect(row(page, "memo").locator("td").nth(1)).to_contain_text("Internal document, in brief.")

    # A second, slower run: one document at a time, paused part way and resumed.
    settings.BATCH_CONCURRENCY = 1
    mailroom.delay = 2.0
    page.get_by_role("link", name="Briefs").click()
    page.get_by_role("button", name="Run on all documents").click()
    some_done = re.compile(r"[1-4] of 5 documents done")
    expect(page.locator("#progress-text")).to_contain_text(some_done, timeout=30_000)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#progress-text .status")).to_have_text("Paused")
    expect(page.locator("#progress")).not_to_have_attribute("hx-trigger", "every 2s")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#progress-text")).to_contain_text("5 of 5 documents done", timeout=60_000)
    expect(page.locator("#progress-text .status")).to_have_text("Done")
    page.get_by_role("link", name="Compare with the previous run").click()
    expect(page.locator("h2")).to_have_text("0 changes")

    page.go_back()
    csv_rows = list(csv.reader(io.StringIO(export(page, "Export CSV").decode())))
    assert csv_rows[0][3] == "Summary" and len(csv_rows) == 6
    row(page, "policy").get_by_role("link", name="p. 1").click()
    expect(page.locator("mark#passage")).to_contain_text("Travel policy")
    page.go_back()
    open_audit_record(page, "policy", "Travel document, in brief.")


def test_the_batch_pages_fit_a_phone_in_both_themes_and_pass_axe(
    browser, live_server, people, mailroom
):
    """Each batch page at 360 px, light and dark: no sideways scroll (tables scroll inside
    themselves), readable text, large touch targets, no serious axe violation."""
    from tests.test_browser_axe import AXE, scan
    from tests.test_browser_responsive import PHONE, SCHEMES, check_page

    job = jobs.create_job(
        people.owner,
        name="Amounts due",
        kind="extract",
        collection_ids=[people.legal.pk],
        spec={
            "fields": [{"name": "total", "type": "number"}, {"name": "due date", "type": "date"}]
        },
    )
    first = jobs.start(job, people.owner)
    jobs.run_now(first.pk)
    run = jobs.start(job, people.owner)
    jobs.run_now(run.pk)
    assert run.results.filter(status="done").count() == 5
    base = live_server.url
    urls = [
        f"{base}{reverse('batch:index')}",
        f"{base}{reverse('batch:create')}",
        f"{base}{reverse('batch:job', args=[job.pk])}",
        f"{base}{reverse('batch:edit', args=[job.pk])}",
        f"{base}{reverse('batch:run_detail', args=[run.pk])}",
        f"{base}{reverse('batch:compare', args=[run.pk])}",
    ]
    problems: list[str] = []
    for scheme in SCHEMES:
        # The pages' CSP forbids inline scripts: axe is injected as one.
        context = browser.new_context(viewport=PHONE, color_scheme=scheme, bypass_csp=True)
        page = context.new_page()
        sign_in(page, base, "owner")
        for url in urls:
            problems += check_page(page, url, scheme)
            if AXE.exists():
                problems += scan(page, f"on {url} in {scheme}")
        context.close()
    assert not problems, "\n".join(problems)
