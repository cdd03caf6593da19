"""The chat's collection picker in a real browser (Debian's chromium driven by Playwright)."""

import os

import pytest
from playwright.sync_api import Page, expect

from assistant.models import AuditEvent, Conversation, QueryRecord
from tests.factories import ingest_now, make_document, make_user
from tests.test_browser import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def reader(people):
    """Reads Legal and Sales, each holding an answer about meals."""
    for collection, text in [
        (people.legal, b"Meals abroad: 60 euros."),
        (people.sales, b"Meals: 9 euros."),
    ]:
        ingest_now(make_document(collection, "meals.txt", text).pk)
    return make_user("both", groups=["Legal", "Sales"])


def test_a_scope_is_picked_kept_and_changed(
    page: Page, live_server, people, reader, fake_llm
) -> None:
    sign_in(page, live_server.url, "both")
    names = page.locator("#scope-names")
    expect(names).to_have_text("Legal, Sales")
    page.get_by_label("Sales").uncheck()
    expect(names).to_have_text("Legal")  # the sidebar says what will be searched
    page.fill("textarea[name=question]", "What is the meal allowance?")
    page.click("#ask button[type=submit]")
    expect(page.locator("article.msg.assistant[id^=msg-]")).to_have_count(1)  # answered
    expect(page.get_by_label("Legal")).to_be_disabled()  # the conversation keeps its scope
    record = QueryRecord.objects.get()
    assert record.scope == [{"id": people.legal.pk, "name": "Legal"}]
    assert {r["collection_id"] for r in record.retrieved} == {people.legal.pk}

    # The conversation's page shows its scope and changes it, without any script.
    conversation = Conversation.objects.get()
    page.reload()
    expect(page).to_have_url(f"{live_server.url}/chat/{conversation.pk}/")
    expect(names).to_have_text("Legal")
    page.locator(".scope-change summary").click()
    page.get_by_label("Legal").uncheck()
    page.get_by_label("Sales").check()
    page.locator(".scope-change button[type=submit]").click()
    expect(names).to_have_text("Sales")
    event = AuditEvent.objects.get(action=AuditEvent.Action.SCOPE_CHANGED)
    assert [c["name"] for c in event.detail["after"]] == ["Sales"]
