"""What is searched and what is shown: a follow-up's rewrite is used only when it is faithful,
and passages far below the best one are not listed as sources."""

import pytest
from django.contrib.auth.models import Group

from assistant import chat
from assistant.models import Conversation, QueryRecord
from ingestion import pipeline
from tests.assistant.test_chat import ask
from tests.factories import make_document

pytestmark = pytest.mark.embedded

LEAVE = "How many days of annual leave do employees get?"
TURNS = [("user", LEAVE), ("assistant", "Employees get 27 days of paid annual leave [1].")]
FOLLOW_UP = "Can I work from another country for a month?"


@pytest.mark.parametrize(
    ("rewrite", "used"),
    [
        ("Can employees work from another country for a month?", True),
        ("Can I work from another country for a month of annual leave?", True),
        # What the embedded model did: a statement, with content nobody said.
        (
            "The document states that employees can work from any country, but it does not "
            "specify what that means",
            False,
        ),
        ("Can I work from Mars for a month under the sabbatical policy?", False),  # invented
        ("How many days of annual leave do employees get?", False),  # dropped the question
    ],
)
def test_a_rewrite_is_used_only_when_it_is_a_faithful_question(rewrite: str, used: bool) -> None:
    assert chat.faithful(rewrite, FOLLOW_UP, TURNS) is used


def test_an_invented_rewrite_falls_back_and_is_recorded(people, fake_llm) -> None:
    make_document(people.legal, "leave.txt", b"Employees get 27 days of paid annual leave.")
    pipeline.ingest(people.legal.documents.get().pk)
    ask(people.teammate, LEAVE)
    invented = "The document states that employees can work from any country."
    fake_llm.completion = invented
    ask(people.teammate, FOLLOW_UP, conversation=Conversation.objects.get())
    record = QueryRecord.objects.order_by("-id").first()
    assert record is not None and record.grounding["rewrite"] == "fallback"
    assert record.grounding["search_query"] == f"{LEAVE} {FOLLOW_UP}"
    assert record.grounding["rejected_rewrite"] == invented


LEAVE_POLICY = b"""# Northwind Care leave policy

## Annual leave
Every full-time employee receives 27 days of paid annual leave per calendar year, plus public
holidays. Up to five unused days may be carried over into the first quarter of the next year.

## Sick leave
Report sickness to your manager before 9:00 on the first day. From the fourth consecutive day a
doctor's note is required. Sick days do not reduce annual leave.
"""
STOCK_AWARDS = b"""Stock awards. Restricted stock units granted to employees vest over four years,
25% after the first year and monthly thereafter. Unvested awards are forfeited when employment
ends. The compensation committee may accelerate vesting on a change of control.

Equity plan. The 2021 Equity Incentive Plan reserves 12,000,000 shares of common stock for
awards to employees, directors and consultants; shares withheld for taxes return to the pool.
"""


def test_a_question_about_leave_does_not_list_stock_award_clauses(people, fake_llm) -> None:
    people.teammate.groups.add(Group.objects.get(name="Sales"))  # reads both collections
    for collection, name, text in (
        (people.legal, "leave-policy.md", LEAVE_POLICY),
        (people.sales, "filing.txt", STOCK_AWARDS),
    ):
        pipeline.ingest(make_document(collection, name, text).pk)
    ask(people.teammate, LEAVE)
    record = QueryRecord.objects.get()
    assert {s["collection_id"] for s in record.retrieved} == {people.legal.pk, people.sales.pk}
    shown = [s for s in record.retrieved if s["point_id"] in record.grounding["shown"]]
    assert shown and {s["title"] for s in shown} == {"leave-policy"}
    # The model was given only those passages, numbered from 1.
    prompt = str(fake_llm.requests[0]["messages"])
    assert "Restricted stock units" not in prompt and '<document id="1"' in prompt
