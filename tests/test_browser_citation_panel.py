"""The citation panel in a real browser (Debian's chromium driven by Playwright)."""

import os
from dataclasses import asdict

import pytest
from playwright.sync_api import Page, expect

from assistant.models import Conversation, Message
from ingestion import index
from tests.factories import ingest_now, make_document, make_pdf
from tests.test_browser import PAGES, sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def conversation(people) -> Conversation:
    """The teammate's conversation whose answer cites page 2 of the travel policy."""
    document = make_document(people.legal, "travel.pdf", make_pdf(PAGES))
    ingest_now(document.pk)
    hits = index.search("daily meal allowance abroad", [people.legal.pk], 5)
    hit = next(h for h in hits if "60 euros" in h.text)
    conversation = Conversation.objects.create(user=people.teammate, title="Meals")
    Message.objects.create(conversation=conversation, role=Message.Role.USER, content="Meals?")
    Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content="The allowance is 60 euros [1].",
        sources=[{"n": 1, **asdict(hit)}],
    )
    return conversation


def open_conversation(page: Page, base: str, conversation: Conversation) -> None:
    sign_in(page, base, "teammate")
    page.goto(f"{base}/chat/{conversation.pk}/")


def test_a_citation_opens_its_passage_in_a_panel_that_the_keyboard_can_leave(
    page: Page, live_server, conversation
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_conversation(page, live_server.url, conversation)
    page.evaluate("window.notReloaded = true")
    cite = page.locator("a.cite").first
    cite.focus()
    page.keyboard.press("Enter")
    panel = page.locator("dialog#citation-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("mark#citation-passage")).to_contain_text("60 euros")
    expect(panel.locator("h2")).to_contain_text("travel")
    expect(panel).to_contain_text("Page 2")
    href = panel.get_by_role("link", name="Open the PDF at page 2").get_attribute("href")
    assert href and href.endswith("/file/#page=2")
    assert page.evaluate("window.notReloaded === true")  # no navigation
    # A side panel: the right-hand part of the window, full height.
    box = panel.bounding_box()
    assert box and box["x"] > 600 and box["height"] >= 790
    # Focus is inside and Tab keeps it there.
    inside = "document.activeElement.closest('dialog#citation-panel') !== null"
    for _ in range(5):
        assert page.evaluate(inside)
        page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(inside)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('cite')")
    # A source in the list opens the same panel.
    page.locator("ol.sources a.source-link").first.click()
    expect(panel.locator("mark#citation-passage")).to_contain_text("60 euros")
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('source-link')")


def test_on_a_phone_the_panel_is_a_bottom_sheet(page: Page, live_server, conversation) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    open_conversation(page, live_server.url, conversation)
    page.locator("a.cite").first.click()
    panel = page.locator("dialog#citation-panel")
    expect(panel.locator("mark#citation-passage")).to_contain_text("60 euros")
    box = panel.bounding_box()
    assert box and box["x"] == 0 and box["width"] == 390
    assert box["y"] > 0 and abs(box["y"] + box["height"] - 800) <= 1
