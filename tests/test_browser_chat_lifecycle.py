"""An answer's lifecycle in a real browser: status, Stop (button and Esc), Regenerate, Edit and
resend, Copy. The model is the fake at the HTTP edge, slowed so there is time to stop it."""

import os
import time

import pytest
from playwright.sync_api import Page, expect

from assistant.models import AuditEvent, QueryRecord
from tests.factories import ingest_now, make_document, make_pdf
from tests.test_browser import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

LONG = [f"word{i} " for i in range(400)]
COUNT_STATUS_CHANGES = """() => {
    window.statusChanges = 0;
    new MutationObserver((records) => (window.statusChanges += records.length)).observe(
        document.getElementById("answer-status"), {childList: true, characterData: true});
}"""


@pytest.fixture
def refunds(people):
    document = make_document(
        people.legal, "refunds.pdf", make_pdf(["Cover.", "Refunds take 14 days."])
    )
    ingest_now(document.pk)
    return document


def ask_and_watch_it_write(page: Page, question: str) -> None:
    page.wait_for_load_state()  # the chat's scripts handle Enter, not the browser's form post
    page.fill("textarea[name=question]", question)
    page.press("textarea[name=question]", "Enter")
    expect(page.locator("#answer-status")).to_have_text("Writing…", timeout=30_000)
    expect(page.locator("#stop")).to_be_visible()
    expect(page.locator("article.msg.assistant .answer.streaming")).to_contain_text("word3")


def test_stop_with_the_button_then_regenerate_then_copy(
    page: Page, live_server, people, refunds, fake_llm
) -> None:
    fake_llm.tokens, fake_llm.token_delay = LONG, 0.05
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, live_server.url, "teammate")
    status = page.locator("#answer-status")
    assert status.get_attribute("aria-live") == "polite"
    page.evaluate(COUNT_STATUS_CHANGES)
    ask_and_watch_it_write(page, "How long do refunds take?")
    page.click("#stop")

    answer = page.locator("article.msg.assistant").last
    expect(answer.locator(".stopped-note")).to_be_visible(timeout=10_000)
    expect(status).to_have_text("Stopped.")
    expect(page.locator("#stop")).to_be_hidden()
    # Searching, Writing, Stopping, Stopped: a screen reader is not read every token.
    assert page.evaluate("window.statusChanges") == 4
    assert fake_llm.disconnected.wait(5)
    stopped = QueryRecord.objects.get()
    assert stopped.outcome == QueryRecord.Outcome.STOPPED
    assert stopped.answer.startswith("word0 word1 word2 word3") and "word399" not in stopped.answer

    fake_llm.tokens, fake_llm.token_delay = ["Refunds take ", "14 days [1]."], 0
    answer.locator("button.regenerate").click()
    expect(page.locator("article.msg.assistant .answer")).to_have_text(
        "Refunds take 14 days [1].", timeout=30_000
    )
    expect(page.locator("article.msg")).to_have_count(2)  # it replaced the stopped answer
    expect(status).to_have_text("Answer ready.")
    regenerated = QueryRecord.objects.exclude(pk=stopped.pk).get()
    assert regenerated.regenerates_ref == stopped.pk

    page.locator("article.msg.assistant button.copy-answer").click()
    expect(status).to_have_text("Answer copied with its sources.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "Refunds take 14 days [1].\n\nSources:\n[1] refunds, page 2"
    # The audit post is not awaited by the page: give it a moment to land.
    events = AuditEvent.objects.filter(action=AuditEvent.Action.ANSWER_COPIED)
    deadline = time.monotonic() + 10
    while not events.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert events.get().target_id == str(regenerated.pk)


def test_esc_stops_the_answer_and_the_last_question_can_be_edited_and_resent(
    page: Page, live_server, people, refunds, fake_llm
) -> None:
    fake_llm.tokens, fake_llm.token_delay = LONG, 0.05
    sign_in(page, live_server.url, "teammate")
    ask_and_watch_it_write(page, "How long do refnds tke?")
    page.keyboard.press("Escape")
    expect(page.locator(".stopped-note")).to_be_visible(timeout=10_000)
    assert fake_llm.disconnected.wait(5)
    typo = QueryRecord.objects.get()
    assert typo.outcome == QueryRecord.Outcome.STOPPED

    fake_llm.tokens, fake_llm.token_delay = ["Refunds take ", "14 days [1]."], 0
    page.reload()  # the stored conversation offers the same actions
    page.locator("article.msg.user button.edit-question").click()
    editor = page.get_by_label("Edit your question")
    expect(editor).to_be_focused()
    editor.fill("How long do refunds take?")
    editor.press("Enter")
    expect(page.locator("article.msg.assistant .answer")).to_have_text(
        "Refunds take 14 days [1].", timeout=30_000
    )
    expect(page.locator("article.msg.user > p")).to_have_text(["How long do refunds take?"])
    edited = QueryRecord.objects.exclude(pk=typo.pk).get()
    assert (edited.edits_ref, edited.question) == (typo.pk, "How long do refunds take?")
    # The new question can be edited again; the stream's bubble got its Edit button too.
    expect(page.locator("article.msg.user button.edit-question")).to_be_visible()
