"""The whole chat with the keyboard alone: sign in, pick a scope, ask, stop with Esc,
regenerate, open a citation, give feedback. No click anywhere."""

import os

import pytest
from playwright.sync_api import Page, expect

from assistant.models import Feedback, QueryRecord
from tests.factories import PASSWORD, ingest_now, make_document, make_user

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

LONG = [f"word{i} " for i in range(400)]


@pytest.fixture
def reader(people):
    """Reads Legal and Sales, each holding an answer about meals."""
    for collection, text in [
        (people.legal, b"Meals abroad: 60 euros."),
        (people.sales, b"Meals: 9 euros."),
    ]:
        ingest_now(make_document(collection, "meals.txt", text).pk)
    return make_user("both", groups=["Legal", "Sales"])


def tab_to(page: Page, selector: str) -> None:
    """Presses Tab until the focused element matches the selector."""
    for _ in range(80):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_an_employee_uses_the_chat_with_the_keyboard_alone(
    page: Page, live_server, people, reader, fake_llm
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/login/")
    tab_to(page, "input[name=username]")
    page.keyboard.type("both")
    tab_to(page, "input[name=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/chat/")
    page.wait_for_load_state()  # chat.js handles Enter and Esc

    # Search Legal only: the sidebar's picker, ticked with Space.
    tab_to(page, f"#scope-picker input[value='{people.sales.pk}']")
    page.keyboard.press("Space")
    expect(page.locator("#scope-names")).to_have_text("Legal")

    # Ask; the status line is announced politely, the streaming answer is not read per token.
    fake_llm.tokens, fake_llm.token_delay = LONG, 0.05
    tab_to(page, "textarea[name=question]")
    page.keyboard.type("What is the meal allowance abroad?")
    page.keyboard.press("Enter")
    status = page.locator("#answer-status")
    expect(status).to_have_text("Writing…", timeout=30_000)
    assert status.get_attribute("aria-live") == "polite"
    streaming = page.locator("article.msg.assistant .answer.streaming")
    expect(streaming).to_contain_text("word3")
    assert streaming.evaluate("el => el.closest('[aria-live], [role=status], [role=log]')") is None

    page.keyboard.press("Escape")
    expect(page.locator(".stopped-note")).to_be_visible(timeout=10_000)
    expect(status).to_have_text("Stopped.")
    stopped = QueryRecord.objects.get()
    assert stopped.outcome == QueryRecord.Outcome.STOPPED
    assert stopped.scope == [{"id": people.legal.pk, "name": "Legal"}]

    fake_llm.tokens, fake_llm.token_delay = ["Meals abroad are ", "60 euros a day [1]."], 0
    tab_to(page, "article.msg.assistant button.regenerate")
    page.keyboard.press("Enter")
    answer = page.locator("article.msg.assistant").last
    expect(answer.locator(".answer")).to_have_text("Meals abroad are 60 euros a day [1].",
                                                   timeout=30_000)  # fmt: skip
    expect(status).to_have_text("Answer ready.")

    # [1] opens the citation panel; Esc closes it and gives the focus back to [1].
    tab_to(page, "article.msg.assistant a.cite")
    page.keyboard.press("Enter")
    panel = page.locator("dialog#citation-panel")
    expect(panel.locator("mark#citation-passage")).to_contain_text("60 euros")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('cite')")

    tab_to(page, "article.msg.assistant button.feedback-rating[value=up]")
    with page.expect_response(lambda r: r.url.endswith("/feedback/")):
        page.keyboard.press("Enter")
    expect(answer.locator("button.feedback-rating[value=up]")).to_have_attribute(
        "aria-pressed", "true"
    )
    regenerated = QueryRecord.objects.exclude(pk=stopped.pk).get()
    assert regenerated.regenerates_ref == stopped.pk
    assert Feedback.objects.get().rating == "up"
