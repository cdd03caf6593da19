"""One journey per role in a real browser (Debian's chromium driven by Playwright), against the
real stack: the employee asks the real model, the collection admin uploads through the real
worker, the auditor reads the trail those left, the superuser manages people."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation
from playwright.sync_api import Page, Response, expect

from assistant import llm
from assistant.models import Conversation, Feedback, Message, QueryRecord
from tests.conftest import login, read_events
from tests.factories import ingest_now, make_auditor, make_document, make_group, make_pdf, make_user
from tests.fake_llm import FakeLLM
from tests.test_browser import PAGES, count_streamed_tokens, sign_in
from tests.test_browser_organise import make_conversation

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

QUESTION = "What is the daily meal allowance abroad?"
# Every text the polite status line shows, in order (it changes per phase, not per token).
WATCH_STATUS = """() => {
    window.statuses = [];
    const status = document.getElementById("answer-status");
    new MutationObserver(() => window.statuses.push(status.textContent)).observe(
        status, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture
def company(people):
    """Legal holds the travel policy, Sales a price list; the teammate (the employee) reads
    both, the owner manages Legal; an auditor and a superuser exist."""
    people.teammate.groups.add(make_group("Sales"))
    people.travel = make_document(people.legal, "travel.pdf", make_pdf(PAGES))
    ingest_now(people.travel.pk)
    ingest_now(make_document(people.sales, "prices.txt", b"Meals: 9 euros a day.").pk)
    people.auditor = make_auditor()
    people.root = make_user("root", is_superuser=True, is_staff=True)
    return people


@pytest.fixture
def disliked(company, fake_llm) -> QueryRecord:
    """The employee asked about meals in Legal (over HTTP, the fake model answering) and said
    the answer was wrong."""
    fake_llm.tokens = ["The allowance is ", "60 euros [1]."]
    employee = login(company.teammate)
    asked = employee.post(
        reverse("chat:ask_new"), {"question": QUESTION, "scope": [company.legal.pk]}
    )
    assert read_events(asked)[-1][0] == "done"
    answer = Message.objects.get(role=Message.Role.ASSISTANT)
    employee.post(
        reverse("chat:feedback", args=[answer.conversation_id, answer.pk]),
        {"rating": "down", "reasons": ["wrong"], "comment": "Last year's figure."},
    )
    assert Feedback.objects.get().rating == "down"
    return QueryRecord.objects.get()


def is_feedback(response: Response) -> bool:
    return response.url.endswith("/feedback/")


def in_spanish(text: str) -> str:
    with translation.override("es"):
        spanish = translation.gettext(text)
    assert spanish != text, f"{text!r} has no Spanish translation"
    return spanish


@pytest.fixture
def slow_llm() -> Iterator[FakeLLM]:
    """A fake model at the HTTP edge that writes slowly: time to press Stop."""
    fake = FakeLLM()
    fake.tokens, fake.token_delay = [f"word{i} " for i in range(400)], 0.05
    yield fake
    fake.close()


def test_an_employee_asks_checks_rates_reworks_finds_and_changes_language(
    page: Page, live_server, company, real_llm, slow_llm, settings
) -> None:
    settings.LLM_MAX_TOKENS = 48  # small answers keep the CPU model quick
    make_conversation(company.teammate, "Parental leave", "How long is parental leave?", 30)
    company.legal.starters = QUESTION
    company.legal.save()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    base = live_server.url
    sign_in(page, base, "teammate")

    # An empty chat suggests the collection's starter; both collections are searched.
    starter = page.locator(".starters").get_by_role("button", name=QUESTION)
    expect(starter).to_be_visible()
    expect(page.locator("#scope-names")).to_have_text("Legal, Sales")
    page.get_by_label("Sales").uncheck()
    expect(page.locator("#scope-names")).to_have_text("Legal")

    # Asked, the real model's answer streams under a status line, its sources listed.
    page.evaluate(WATCH_STATUS)
    count_streamed_tokens(page)
    starter.click()
    expect(page.locator("#ask textarea")).to_have_value(QUESTION)
    page.click("#ask button[type=submit]")
    answer = page.locator("article.msg.assistant").last
    expect(answer.locator("ol.sources li").first).to_contain_text("travel", timeout=90_000)
    expect(page.locator("#answer-status")).to_have_text("Answer ready.")
    statuses = page.evaluate("window.statuses")
    assert statuses[0] == "Searching Legal…" and "Writing…" in statuses, statuses
    assert page.evaluate("window.tokenAppends") >= 3
    assert answer.locator(".answer").inner_text().strip()
    expect(page.locator(".starters")).to_be_hidden()
    first = QueryRecord.objects.get()
    assert first.scope == [{"id": company.legal.pk, "name": "Legal"}]

    # A source opens its passage in the side panel, without leaving the page.
    answer.locator("ol.sources a.source-link").first.click()
    panel = page.locator("dialog#citation-panel")
    expect(panel.locator("mark#citation-passage")).to_contain_text("60 euros")
    expect(panel).to_contain_text("Page 2")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # Not helpful, with a reason and a comment; then changed to helpful.
    answer_id = int((answer.get_attribute("id") or "").removeprefix("msg-"))
    down = page.locator(f"#feedback-down-{answer_id}")
    up = page.locator(f"#feedback-up-{answer_id}")
    with page.expect_response(is_feedback):
        down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    page.locator(f"#feedback-{answer_id}-wrong").check()
    page.locator(f"#feedback-comment-{answer_id}").fill("It gives last year's figure.")
    with page.expect_response(is_feedback):
        page.locator(f"#feedback-send-{answer_id}").click()
    expect(page.locator(f"#feedback-{answer_id} [role=status]")).to_contain_text("saved")
    expect(page.locator(f"#feedback-{answer_id}-wrong")).to_be_checked()
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.reasons) == ("down", ["wrong"])
    assert feedback.comment == "It gives last year's figure."
    with page.expect_response(is_feedback):
        up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    feedback.refresh_from_db()
    assert feedback.rating == "up"

    # Copy: the answer as text, then its sources.
    answer.locator("button.copy-answer").click()
    expect(page.locator("#answer-status")).to_have_text("Answer copied with its sources.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(answer.locator(".answer").inner_text().strip())
    assert "\n\nSources:\n[1] travel, page " in copied

    # Regenerate: the real model answers again, in place of the first answer.
    answer.locator("button.regenerate").click()
    expect(page.locator("#answer-status")).to_have_text("Answer ready.", timeout=90_000)
    expect(page.locator("article.msg")).to_have_count(2)
    regenerated = QueryRecord.objects.exclude(pk=first.pk).get()
    assert regenerated.regenerates_ref == first.pk
    expect(page.locator("article.msg.assistant ol.sources li").first).to_contain_text("travel")

    # Edit the question and resend it; the (slow, fake) answer is stopped halfway.
    settings.LLM_BASE_URL = slow_llm.url
    llm.connection.cache_clear()
    page.locator("article.msg.user button.edit-question").click()
    editor = page.get_by_label("Edit your question")
    expect(editor).to_have_value(QUESTION)
    editor.fill("What is the meal allowance abroad per day?")
    editor.press("Enter")
    expect(page.locator("#answer-status")).to_have_text("Writing…", timeout=30_000)
    expect(page.locator("article.msg.assistant .answer.streaming")).to_contain_text("word3")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".stopped-note")).to_be_visible(timeout=10_000)
    expect(page.locator("#answer-status")).to_have_text("Stopped.")
    expect(page.locator("article.msg.user > p")).to_have_text(
        ["What is the meal allowance abroad per day?"]
    )
    stopped = QueryRecord.objects.exclude(pk__in=[first.pk, regenerated.pk]).get()
    assert (stopped.edits_ref, stopped.outcome) == (regenerated.pk, QueryRecord.Outcome.STOPPED)

    # Search finds the conversation by what was asked; a pin moves it to the top.
    title = Conversation.objects.get(messages__content__contains="per day").title
    sidebar = page.locator("aside.sidebar")
    page.fill("input[name=q]", "allowance abroad")
    results = sidebar.locator("ul.results")
    expect(results).to_contain_text(title)
    expect(results).not_to_contain_text("Parental leave")
    page.fill("input[name=q]", "")
    sidebar.get_by_role("button", name="Pin Parental leave").click()
    expect(sidebar.locator(".conversation-group[aria-label=Pinned]")).to_contain_text(
        "Parental leave"
    )
    assert Conversation.objects.get(title="Parental leave").pinned

    # The header's switcher: the page in Spanish, then back in English.
    page.select_option("#language-choice", "es")
    page.locator("form.language button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("form.logout button")).to_have_text(in_spanish("Log out"))
    expect(page.locator("#ask button[type=submit]")).to_have_text(in_spanish("Ask"))
    page.select_option("#language-choice", "en")
    page.locator("form.language button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("form.logout button")).to_have_text("Log out")


def test_a_collection_admin_sets_starters_uploads_grants_and_reads_feedback(
    page: Page, live_server, company, disliked, celery_worker, tmp_path: Path
) -> None:
    base = live_server.url
    sign_in(page, base, "owner")
    page.get_by_role("link", name="Collections", exact=True).click()
    page.get_by_role("link", name="Legal", exact=True).click()
    expect(page.locator("h1")).to_have_text("Legal")

    # Starter questions for the collection's readers.
    page.fill("#starters", "How many days of leave do I get?\nWhat is the meal allowance?")
    page.get_by_role("button", name="Save starter questions").click()
    expect(page.locator(".flash")).to_contain_text("Starter questions saved.")
    expect(page.locator("#starters")).to_have_value(
        "How many days of leave do I get?\nWhat is the meal allowance?"
    )

    # A small document uploaded becomes ready while the page watches.
    (tmp_path / "leave.txt").write_text("Annual leave is thirty days a year.\n")
    page.set_input_files("input[name=files]:not([data-folder])", tmp_path / "leave.txt")
    page.click("#upload-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("1 file(s) uploaded")
    row = page.locator("#documents tr", has_text="leave")
    expect(row.locator(".status")).to_have_text("Ready", timeout=120_000)

    # Access: Sales may read Legal too.
    page.get_by_role("link", name="Change access").click()
    expect(page.locator("h1")).to_contain_text("Legal")
    page.get_by_role("group", name="Readable by groups").get_by_label("Sales").check()
    page.get_by_role("button", name="Save access").click()
    expect(page.locator(".flash")).to_contain_text("Access updated.")
    page.get_by_role("link", name="Back to the collection").click()
    expect(page.locator("section.card").first).to_contain_text("Readable by: Legal, Sales")

    # Feedback on answers that searched Legal: the employee's dislike, with its reason.
    page.get_by_role("link", name="Feedback", exact=True).click()
    expect(page.locator("h1")).to_have_text("Feedback on answers")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(QUESTION)
    expect(rows).to_contain_text("Not helpful")
    expect(rows).to_contain_text("Wrong")
    expect(rows).to_contain_text("Last year's figure.")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("updated_at,username,rating,reasons,comment")
    assert len(lines) == 2 and "down" in lines[1] and QUESTION in lines[1]


def test_an_auditor_finds_the_question_and_its_feedback_but_not_the_people(
    page: Page, live_server, company, disliked
) -> None:
    base = live_server.url
    sign_in(page, base, "auditor")
    nav = page.locator("header.top nav")
    expect(nav.get_by_role("link", name="People")).to_have_count(0)

    nav.get_by_role("link", name="Audit").click()
    expect(page.locator("h1")).to_have_text("Query records")
    row = page.locator("#rows tr", has_text=QUESTION)
    expect(row).to_contain_text("teammate")
    expect(row).to_contain_text("Legal")
    expect(row).to_contain_text("Answered")
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text(f"Query record {disliked.pk}")
    facts = page.locator("table.grid")
    expect(facts.locator("tr", has_text="Scope")).to_contain_text(f"Legal (#{company.legal.pk})")
    expect(facts.locator("tr", has_text="Outcome")).to_contain_text("Answered")
    sources = page.locator("ol.sources li")
    expect(sources.first).to_contain_text("travel")
    expect(page.locator("ol.sources")).to_contain_text("60 euros")

    nav.get_by_role("link", name="Feedback").click()
    expect(page.get_by_text("All feedback.")).to_be_visible()
    feedback = page.locator("#rows tr")
    expect(feedback).to_have_count(1)
    expect(feedback).to_contain_text("teammate")
    expect(feedback).to_contain_text("Not helpful")

    response = page.goto(f"{base}/people/")
    assert response and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_a_superuser_manages_people_and_reaches_every_page(
    page: Page, live_server, company, disliked
) -> None:
    base = live_server.url
    sign_in(page, base, "root")
    nav = page.locator("header.top nav")
    nav.get_by_role("link", name="People").click()
    expect(page.locator("h1")).to_have_text("People")

    page.get_by_label("New group name").fill("Finance")
    page.get_by_role("button", name="Create group").click()
    expect(page.locator(".flash")).to_contain_text("Group Finance created.")

    page.get_by_role("link", name="teammate", exact=True).click()
    expect(page.locator("h1")).to_have_text("teammate")
    page.get_by_label("Finance").check()
    page.get_by_label("Compliance auditor").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Saved teammate.")
    page.get_by_role("link", name="Back to people").click()
    teammate = page.locator("tr", has_text="teammate")
    expect(teammate).to_contain_text("Finance")
    expect(teammate).to_contain_text("auditor")

    # Everything the other roles use, the superuser reaches too.
    legal = company.legal.pk
    headings = {
        "/chat/": None,
        "/collections/": "Collections",
        f"/collections/{legal}/": "Legal",
        f"/collections/{legal}/access/": "Who may use “Legal”",
        "/feedback/": "Feedback on answers",
        "/audit/": "Query records",
        f"/audit/records/{disliked.pk}/": f"Query record {disliked.pk}",
        "/audit/events/": "Security events",
    }
    for path, heading in headings.items():
        response = page.goto(f"{base}{path}")
        assert response and response.status == 200, path
        if heading:
            expect(page.locator("h1")).to_have_text(heading)
    for link in ("Chat", "Collections", "Audit", "Feedback", "People"):
        expect(nav.get_by_role("link", name=link, exact=True)).to_be_visible()
