"""Finding and organising conversations: search, pins, date groups; starter questions."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assistant import conversations
from assistant.models import AuditEvent, Conversation, Message
from ingestion import starters
from tests.conftest import login
from tests.factories import make_collection, make_user

pytestmark = pytest.mark.embedded

HTMX = {"HX-Request": "true"}


def make_conversation(user, title: str, *texts: str, days_ago: int = 0) -> Conversation:
    conversation = Conversation.objects.create(user=user, title=title)
    for n, text in enumerate(texts):
        role = Message.Role.USER if n % 2 == 0 else Message.Role.ASSISTANT
        Message.objects.create(conversation=conversation, role=role, content=text)
    when = timezone.now() - timedelta(days=days_ago)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)
    return conversation


def search(user, q: str, **extra) -> str:
    response = login(user).get(reverse("chat:search"), {"q": q, **extra}, headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


# --- search ---------------------------------------------------------------------------------


def test_search_finds_own_conversations_by_title_and_message_text(people) -> None:
    by_title = make_conversation(people.teammate, "Parental leave", "How long is it?")
    by_text = make_conversation(
        people.teammate, "Travel", "What is the MEAL allowance?", "It is 60 euros a day."
    )
    make_conversation(people.teammate, "Refunds", "How long do refunds take?")
    html = search(people.teammate, "leave")
    assert reverse("chat:conversation", args=[by_title.pk]) in html
    assert reverse("chat:conversation", args=[by_text.pk]) not in html
    html = search(people.teammate, "meal")  # any case
    assert reverse("chat:conversation", args=[by_text.pk]) in html
    assert "What is the MEAL allowance?" in html  # the matching words are shown
    assert "Refunds" not in html


def test_search_never_finds_another_users_conversations(people) -> None:
    theirs = make_conversation(people.outsider, "Sales bonus plan", "What is the bonus plan?")
    html = search(people.teammate, "bonus")
    assert "No conversation matches." in html
    assert reverse("chat:conversation", args=[theirs.pk]) not in html
    assert "Sales bonus plan" not in html


def test_search_results_are_bounded_and_the_query_length_too(people) -> None:
    for n in range(conversations.MAX_RESULTS + 5):
        make_conversation(people.teammate, f"Budget {n}")
    found = conversations.search(people.teammate, "budget")
    assert len(found) == conversations.MAX_RESULTS
    assert conversations.search(people.teammate, "   ") == []
    # An overlong query is cut, not passed whole to the database.
    html = search(people.teammate, "x" * 5000)
    assert "x" * (conversations.MAX_QUERY + 1) not in html


def test_search_without_htmx_shows_the_results_on_the_chat_page(people) -> None:
    mine = make_conversation(people.teammate, "Parental leave")
    client = login(people.teammate)
    response = client.get(reverse("chat:search"), {"q": "leave"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("chat:index") + "?q=leave"
    html = response.content.decode()
    assert "Conversations matching “leave”" in html
    assert reverse("chat:conversation", args=[mine.pk]) in html


def test_search_needs_a_signed_in_user(db, client) -> None:
    response = client.get(reverse("chat:search"), {"q": "leave"})
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- pins and groups ------------------------------------------------------------------------


def test_the_sidebar_groups_conversations_by_day_with_pinned_first(people) -> None:
    make_conversation(people.teammate, "From today")
    make_conversation(people.teammate, "From yesterday", days_ago=1)
    make_conversation(people.teammate, "From last week", days_ago=4)
    make_conversation(people.teammate, "From last year", days_ago=300)
    pinned = make_conversation(people.teammate, "Pinned long ago", days_ago=200)
    Conversation.objects.filter(pk=pinned.pk).update(pinned=True)
    grouped = conversations.grouped(people.teammate)
    groups = {name: [c.title for c in items] for name, _label, items in grouped}
    assert list(groups) == ["Pinned", "Today", "Yesterday", "Previous 7 days", "Older"]
    assert groups == {
        "Pinned": ["Pinned long ago"],
        "Today": ["From today"],
        "Yesterday": ["From yesterday"],
        "Previous 7 days": ["From last week"],
        "Older": ["From last year"],
    }
    html = login(people.teammate).get(reverse("chat:index")).content.decode()
    order = ["Pinned long ago", "From today", "From yesterday", "From last week", "From last year"]
    assert [html.index(title) for title in order] == sorted(html.index(t) for t in order)


def test_the_owner_pins_and_unpins_a_conversation(people) -> None:
    conversation = make_conversation(people.teammate, "Keep me", days_ago=30)
    client = login(people.teammate)
    url = reverse("chat:pin", args=[conversation.pk])
    response = client.post(url, {"current": conversation.pk}, headers=HTMX)
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.pinned
    html = response.content.decode()
    assert html.index("Pinned") < html.index("Keep me")
    assert 'aria-current="page"' in html and "Unpin Keep me" in html
    # Without htmx, back to the conversation; a second pin unpins.
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    conversation.refresh_from_db()
    assert not conversation.pinned


def test_pinning_keeps_the_day_a_conversation_was_last_used(people) -> None:
    conversation = make_conversation(people.teammate, "Last month", days_ago=30)
    before = Conversation.objects.get(pk=conversation.pk).updated_at
    login(people.teammate).post(reverse("chat:pin", args=[conversation.pk]))
    assert Conversation.objects.get(pk=conversation.pk).updated_at == before


def test_an_outsider_cannot_pin_anothers_conversation(people) -> None:
    conversation = make_conversation(people.teammate, "Mine")
    response = login(people.outsider).post(
        reverse("chat:pin", args=[conversation.pk]), headers=HTMX
    )
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert not conversation.pinned
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.ACCESS_DENIED, actor_username="outsider"
    ).exists()
    # A missing one is the same 404.
    assert login(people.outsider).post(reverse("chat:pin", args=[999999])).status_code == 404


def test_pin_only_takes_posts(people) -> None:
    conversation = make_conversation(people.teammate, "Mine")
    response = login(people.teammate).get(reverse("chat:pin", args=[conversation.pk]))
    assert response.status_code == 405


# --- starter questions ----------------------------------------------------------------------


def set_starters(user, collection, text: str):
    url = reverse("ingestion:collection_starters", args=[collection.pk])
    return login(user).post(url, {"starters": text}, follow=True)


def test_a_manager_sets_starters_and_the_change_is_audited(people) -> None:
    response = set_starters(people.owner, people.legal, "How long is parental leave?\n\n  NDA?  \n")
    assert response.status_code == 200 and "Starter questions saved." in response.content.decode()
    people.legal.refresh_from_db()
    assert starters.of(people.legal) == ["How long is parental leave?", "NDA?"]
    event = AuditEvent.objects.get(action=AuditEvent.Action.STARTERS_CHANGED)
    assert event.actor_username == "owner" and event.target_id == str(people.legal.pk)
    assert event.detail == {"before": [], "after": ["How long is parental leave?", "NDA?"]}
    # Saving the same questions again changes nothing and records nothing.
    set_starters(people.owner, people.legal, "How long is parental leave?\nNDA?")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.STARTERS_CHANGED).count() == 1


def test_the_collection_page_offers_the_starters_form_only_to_managers(people) -> None:
    url = reverse("ingestion:collection", args=[people.legal.pk])
    assert "Save starter questions" in login(people.owner).get(url).content.decode()
    assert "Save starter questions" not in login(people.teammate).get(url).content.decode()


@pytest.mark.parametrize(
    "text", ["\n".join(f"Question {n}?" for n in range(6)), "x" * (starters.MAX_CHARS + 1)]
)
def test_too_many_or_too_long_starters_are_refused(people, text) -> None:
    response = set_starters(people.owner, people.legal, text)
    assert response.status_code == 200
    people.legal.refresh_from_db()
    assert people.legal.starters == ""
    assert "starter question" in response.content.decode()


@pytest.mark.parametrize("who", ["teammate", "outsider"])
def test_only_managers_may_set_starters(people, who) -> None:
    response = set_starters(getattr(people, who), people.legal, "Leaked question?")
    assert response.status_code == 404
    people.legal.refresh_from_db()
    assert people.legal.starters == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.STARTERS_CHANGED).exists()


def test_an_empty_chat_offers_starters_only_from_readable_collections(people) -> None:
    people.legal.starters = "How long is parental leave?"
    people.legal.save()
    people.sales.starters = "What is the secret sales target?"
    people.sales.save()
    html = login(people.teammate).get(reverse("chat:index")).content.decode()
    assert 'data-starter="How long is parental leave?"' in html
    assert "secret sales target" not in html
    html = login(people.outsider).get(reverse("chat:index")).content.decode()
    assert "secret sales target" in html and "parental leave" not in html
    # A conversation with messages offers none.
    conversation = make_conversation(people.teammate, "Old", "Hello?")
    url = reverse("chat:conversation", args=[conversation.pk])
    assert "data-starter" not in login(people.teammate).get(url).content.decode()


def test_starters_are_offered_a_few_from_each_collection(db) -> None:
    reader = make_user("reader", groups=["All"])
    for name in ("A", "B"):
        collection = make_collection(name, groups=["All"])
        collection.starters = "\n".join(f"{name} question {n}?" for n in range(5))
        collection.save()
    offered = [q for _, q in starters.offered_to(reader)]
    assert len(offered) == starters.MAX_OFFERED
    assert offered[:4] == ["A question 0?", "B question 0?", "A question 1?", "B question 1?"]
