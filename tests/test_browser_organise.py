"""Finding and organising conversations in a real browser (Debian's chromium driven by
Playwright): the sidebar's search box, pins, and a starter question filling the question box."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from assistant.models import Conversation, Message
from tests.test_browser import sign_in

pytestmark = [pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def make_conversation(user, title: str, text: str, days_ago: int) -> Conversation:
    conversation = Conversation.objects.create(user=user, title=title)
    Message.objects.create(conversation=conversation, role=Message.Role.USER, content=text)
    when = timezone.now() - timedelta(days=days_ago)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)
    return conversation


def test_an_employee_searches_pins_and_picks_a_starter(
    page: Page, live_server, people, fake_llm
) -> None:
    make_conversation(people.teammate, "Travel costs", "What is the meal allowance abroad?", 0)
    make_conversation(people.teammate, "Leave", "How long is parental leave?", 30)
    make_conversation(people.outsider, "Bonus plan", "What is the meal bonus?", 0)
    people.legal.starters = "How many days of annual leave do I get?"
    people.legal.save()
    sign_in(page, live_server.url, "teammate")
    sidebar = page.locator("aside.sidebar")
    expect(sidebar.locator(".conversation-group[aria-label=Older]")).to_contain_text("Leave")

    # Search: results replace the list as one types; nobody else's conversation is found.
    page.fill("input[name=q]", "meal")
    results = sidebar.locator("ul.results")
    expect(results).to_contain_text("Travel costs")
    expect(results).to_contain_text("meal allowance abroad")
    expect(results).not_to_contain_text("Bonus plan")
    expect(results).not_to_contain_text("Leave")
    page.fill("input[name=q]", "")
    expect(sidebar.locator(".conversation-group[aria-label=Today]")).to_contain_text("Travel")

    # Pin: the old conversation moves to the Pinned group, without a page load.
    page.evaluate("window.samePage = true")
    sidebar.get_by_role("button", name="Pin Leave").click()
    pinned = sidebar.locator(".conversation-group[aria-label=Pinned]")
    expect(pinned).to_contain_text("Leave")
    expect(sidebar.locator(".conversation-group[aria-label=Older]")).to_have_count(0)
    assert page.evaluate("window.samePage") is True
    assert Conversation.objects.get(title="Leave").pinned

    # A starter question fills the question box, ready to send.
    page.get_by_role("button", name="How many days of annual leave do I get?").click()
    box = page.locator("#ask textarea[name=question]")
    expect(box).to_have_value("How many days of annual leave do I get?")
    expect(box).to_be_focused()

    # Asked, the question's conversation joins Today and the suggestions go away.
    page.click("#ask button")
    expect(page.locator("article.msg.assistant")).to_have_count(1, timeout=30_000)
    today = sidebar.locator(".conversation-group[aria-label=Today]")
    expect(today.locator("li.current")).to_contain_text("How many days of annual leave")
    expect(page.locator(".starters")).to_be_hidden()
