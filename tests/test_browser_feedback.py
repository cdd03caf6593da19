"""Feedback on an answer, given with the keyboard alone, in a real browser."""

import os

import pytest
from playwright.sync_api import Page, expect

from assistant.models import Feedback
from tests.assistant.test_feedback import make_answer
from tests.factories import ingest_now, make_document, make_pdf
from tests.test_browser import PAGES, sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def give_feedback_by_keyboard(page: Page, answer_id: int) -> None:
    """Not helpful, then a reason and a comment, then Send: Tab, Space, Enter and typing only."""
    page.evaluate("window.notReloaded = true")
    page.locator(f"#feedback-{answer_id}").evaluate("form => form.previousElementSibling.focus()")
    while focused_id(page) != f"feedback-up-{answer_id}":
        page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused_id(page) == f"feedback-down-{answer_id}"
    with page.expect_response(lambda r: r.url.endswith("/feedback/")):
        page.keyboard.press("Enter")
    down = page.locator(f"#feedback-down-{answer_id}")
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#feedback-up-{answer_id}")).to_have_attribute("aria-pressed", "false")
    assert focused_id(page) == f"feedback-down-{answer_id}"  # focus survives the swap
    page.keyboard.press("Tab")  # the "Tell us more" summary, open after "Not helpful"
    page.keyboard.press("Tab")
    assert focused_id(page) == f"feedback-{answer_id}-wrong"
    page.keyboard.press("Space")
    while focused_id(page) != f"feedback-comment-{answer_id}":
        page.keyboard.press("Tab")
    page.keyboard.type("It cites last year's policy.")
    page.keyboard.press("Tab")
    assert focused_id(page) == f"feedback-send-{answer_id}"
    with page.expect_response(lambda r: r.url.endswith("/feedback/")):
        page.keyboard.press("Enter")
    expect(page.locator(f"#feedback-{answer_id}-wrong")).to_be_checked()
    expect(page.locator(f"#feedback-{answer_id} [role=status]")).to_contain_text("saved")
    assert page.evaluate("window.notReloaded === true")  # htmx swapped; the page stayed


def test_an_employee_gives_feedback_on_a_stored_answer_by_keyboard(
    page: Page, live_server, people
) -> None:
    answer = make_answer(people.teammate, [people.legal])
    sign_in(page, live_server.url, "teammate")
    page.goto(f"{live_server.url}/chat/{answer.conversation_id}/")
    give_feedback_by_keyboard(page, answer.pk)
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.reasons) == ("down", ["wrong"])
    assert feedback.comment == "It cites last year's policy."


def test_a_just_streamed_answer_takes_feedback_without_a_reload(
    page: Page, live_server, people, fake_llm
) -> None:
    document = make_document(people.legal, "travel.pdf", make_pdf(PAGES))
    ingest_now(document.pk)
    sign_in(page, live_server.url, "teammate")
    page.fill("textarea[name=question]", "What is the daily meal allowance abroad?")
    page.keyboard.press("Enter")
    form = page.locator("article.msg.assistant form.feedback")
    expect(form).to_be_visible(timeout=30_000)
    answer_id = int((form.get_attribute("id") or "").rsplit("-", 1)[1])
    give_feedback_by_keyboard(page, answer_id)
    assert Feedback.objects.get().reasons == ["wrong"]
