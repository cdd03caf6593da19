"""The usage and cost page: who sees which usage, the figures against the Usage rows, the CSV,
the chart, the groups' budgets and the chat refusing a question once a budget is spent."""

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant import people as roles
from assistant import usage
from assistant.models import (
    AuditEvent,
    Conversation,
    GroupBudget,
    ModelEndpoint,
    QueryRecord,
    Usage,
)
from ingestion.models import Collection
from tests.conftest import login, read_events
from tests.factories import ingest_now, make_auditor, make_document, make_user

pytestmark = pytest.mark.embedded
Action = AuditEvent.Action
ON_PREMISES, EXTERNAL = ModelEndpoint.Location.ON_PREMISES, ModelEndpoint.Location.EXTERNAL


def make_usage(
    user,
    collections: list[Collection],
    *,
    prompt: int = 100,
    completion: int = 20,
    model: str = "enclave",
    location: str = ON_PREMISES,
    latency_ms: int | None = 1000,
    cost: Decimal = Decimal(0),
    when: datetime | None = None,
) -> Usage:
    """A Usage row as record_usage writes it after an answer."""
    row = Usage.objects.create(
        created_at=when or timezone.now(),
        user=user,
        username=user.username,
        channel="chat",
        model=model,
        location=location,
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_ms=latency_ms,
        cost=cost,
    )
    row.groups.set(user.groups.all())
    row.collections.set(collections)
    return row


@pytest.fixture
def root(db):
    return make_user("root", is_superuser=True, is_staff=True)


def page(user, **params: str) -> str:
    response = login(user).get(reverse("usage:index"), params)
    assert response.status_code == 200
    return response.content.decode()


def total(html: str, name: str) -> str:
    found = re.search(rf'id="total-{name}">([^<]*)<', html)
    assert found, name
    return found.group(1).strip()


def export(user, **params: str) -> list[dict[str, str]]:
    response = login(user).get(reverse("usage:export"), params)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- who sees what ---------------------------------------------------------------------------


def test_a_collection_admin_sees_only_usage_that_touched_a_collection_they_manage(
    people,
) -> None:
    make_usage(people.teammate, [people.legal], prompt=100, completion=20)
    make_usage(people.outsider, [people.sales], prompt=5000, completion=700)
    html = page(people.owner)
    assert total(html, "questions") == "1"
    assert total(html, "prompt") == "100" and total(html, "completion") == "20"
    assert "teammate" in html
    assert "outsider" not in html and "Sales" not in html


def test_a_row_over_two_collections_shows_an_admin_only_the_one_they_manage(people) -> None:
    make_usage(people.teammate, [people.legal, people.sales], prompt=300, completion=30)
    html = page(people.owner)
    assert total(html, "prompt") == "300"
    assert "Sales" not in html
    (line,) = export(people.owner)
    assert line["collections"] == "Legal"


def test_a_superuser_sees_all_usage(people, root) -> None:
    make_usage(people.teammate, [people.legal], prompt=100, completion=20)
    make_usage(people.outsider, [people.sales], prompt=5000, completion=700)
    make_usage(people.outsider, [], prompt=1, completion=1)  # an API answer over nothing
    html = page(root)
    assert total(html, "questions") == "3"
    assert total(html, "prompt") == "5101" and total(html, "completion") == "721"
    assert "outsider" in html and "Sales" in html


@pytest.mark.parametrize("route", ["usage:index", "usage:export", "usage:budgets"])
def test_plain_users_and_auditors_are_refused_and_strangers_sent_to_sign_in(
    people, route: str
) -> None:
    make_usage(people.teammate, [people.legal])
    for user in (people.teammate, people.outsider, make_auditor()):
        assert login(user).get(reverse(route)).status_code == 403
    response = login(people.owner).get(reverse(route))
    assert response.status_code == (403 if route == "usage:budgets" else 200)
    anonymous = Client().get(reverse(route))
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))


def test_an_admin_filtering_on_a_collection_they_do_not_manage_sees_nothing(people) -> None:
    make_usage(people.outsider, [people.sales], prompt=5000)
    make_usage(people.teammate, [people.legal], prompt=100)
    html = page(people.owner, collection=str(people.sales.pk))
    assert total(html, "questions") == "0" and "outsider" not in html
    assert export(people.owner, collection=str(people.sales.pk)) == []


def test_the_nav_links_the_page_for_those_who_may_see_it(people, root) -> None:
    link = f'href="{reverse("usage:index")}"'
    assert link in login(people.owner).get(reverse("chat:index")).content.decode()
    assert link in login(root).get(reverse("chat:index")).content.decode()
    assert link not in login(people.teammate).get(reverse("chat:index")).content.decode()


# --- figures -----------------------------------------------------------------------------------


def test_figures_add_up_the_usage_rows_by_user_group_collection_model_and_day(people, root) -> None:
    today = timezone.localdate()
    make_usage(people.teammate, [people.legal], prompt=100, completion=20, latency_ms=1000)
    make_usage(people.teammate, [people.legal], prompt=300, completion=40, latency_ms=3000)
    make_usage(
        people.outsider,
        [people.sales],
        prompt=1000,
        completion=100,
        model="big",
        location=EXTERNAL,
        cost=Decimal("0.004500"),
        latency_ms=None,
    )
    figures = usage.totals(usage.search(root, {}, usage.period_of({})))
    assert figures["questions"] == 3 and figures["prompt"] == 1400 and figures["completion"] == 160
    assert figures["latency"] == 2000 and figures["cost"] == Decimal("0.0045")

    tables = usage.tables(usage.search(root, {}, usage.period_of({})), Collection.objects.all())
    by = {name: {r["label"]: r for r in rows} for name, rows in tables.items()}
    assert by["user"]["teammate"]["questions"] == 2 and by["user"]["teammate"]["prompt"] == 400
    assert by["user"]["teammate"]["latency"] == 2000
    assert by["group"]["Legal"]["completion"] == 60 and by["group"]["Sales"]["prompt"] == 1000
    assert by["collection"]["Sales"]["cost"] == Decimal("0.0045")
    assert by["model"]["enclave"]["tokens"] == 460 and by["model"]["big"]["tokens"] == 1100
    assert by["day"][today]["questions"] == 3
    # The busiest first.
    assert [r["label"] for r in tables["model"]] == ["big", "enclave"]

    html = page(root)
    assert total(html, "cost") == "0.0045 USD"
    assert "<td>big</td><td>1</td><td>1000</td><td>100</td><td>—</td><td>0.0045</td>" in html


def test_saved_prices_the_on_premises_tokens_at_each_enabled_external_model(
    people, root, settings
) -> None:
    settings.COST_CURRENCY = "EUR"
    ModelEndpoint.objects.create(
        name="big", base_url="https://big.example/v1", model="big", location=EXTERNAL,
        input_price=Decimal(3), output_price=Decimal(15),
    )  # fmt: skip
    ModelEndpoint.objects.create(
        name="retired", base_url="https://old.example/v1", model="old", location=EXTERNAL,
        input_price=Decimal(100), enabled=False,
    )  # fmt: skip
    make_usage(people.teammate, [people.legal], prompt=600_000, completion=50_000)
    make_usage(people.teammate, [people.legal], prompt=400_000, completion=50_000)
    # Tokens already sent to an external model saved nothing.
    make_usage(people.teammate, [people.legal], prompt=10**6, model="big", location=EXTERNAL)
    html = page(root)
    assert "Saved this month" in html
    # 1M prompt tokens at 3 and 100k completion tokens at 15 per million.
    assert "4.5000 EUR at the prices of big" in html
    assert "retired" not in html
    (saved,) = usage.saved(usage.search(root, {}, usage.period_of({})))
    assert saved["cost"] == Decimal("4.5")
    assert "Saved in this period" in page(root, month="2020-01")


def test_the_month_and_date_range_filters_choose_the_rows(people, root) -> None:
    last_month = usage.month_start() - timedelta(days=3)
    make_usage(people.teammate, [people.legal], prompt=7, when=last_month)
    make_usage(people.teammate, [people.legal], prompt=100)
    assert total(page(root), "prompt") == "100"
    assert total(page(root, month=last_month.strftime("%Y-%m")), "prompt") == "7"
    since = last_month.date().isoformat()
    assert total(page(root, since=since), "prompt") == "107"
    assert total(page(root, since=since, until=since), "prompt") == "7"


def test_the_model_and_collection_filters_choose_the_rows(people, root) -> None:
    make_usage(people.teammate, [people.legal], prompt=100)
    make_usage(people.outsider, [people.sales], prompt=5000, model="big", location=EXTERNAL)
    assert total(page(root, model="big"), "prompt") == "5000"
    assert total(page(root, collection=str(people.legal.pk)), "prompt") == "100"


@pytest.mark.parametrize(
    "params",
    [{"month": "May"}, {"since": "yesterday"}, {"since": "2026-02-01", "until": "2026-01-01"}],
)
def test_bad_filters_are_explained_not_crashed_on(root, params: dict) -> None:
    response = login(root).get(reverse("usage:index"), params, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("usage:index")
    assert b'class="error"' in response.content
    assert login(root).get(reverse("usage:export"), params).status_code == 400


def test_tokens_per_day_are_drawn_as_inline_svg_without_script_or_style(people, root) -> None:
    make_usage(people.teammate, [people.legal], prompt=90, completion=30)
    html = page(root)
    svg = html.split('<svg class="usage-chart"')[1].split("</svg>")[0]
    days = usage.period_of({}).days
    assert svg.count('class="bar-prompt"') == len(days)
    # Today's bar is the tallest: its two parts fill the chart's height (120) in proportion.
    assert 'class="bar-prompt"' in svg and 'height="90.0"' in svg and 'height="30.0"' in svg
    assert f"{timezone.localdate():%Y-%m-%d}: 120" in svg
    main = html.split("<main>")[1]
    assert "style=" not in main and "<script" not in main


# --- CSV ---------------------------------------------------------------------------------------


def test_the_csv_has_a_line_per_answer_with_the_filters_and_is_audited(people, root) -> None:
    make_usage(people.teammate, [people.legal], prompt=100, completion=20, cost=Decimal("0.01"))
    make_usage(people.outsider, [people.sales], prompt=5000, model="big", location=EXTERNAL)
    lines = export(root, model="enclave")
    assert len(lines) == 1
    line = lines[0]
    assert line["username"] == "teammate" and line["groups"] == "Legal"
    assert line["collections"] == "Legal" and line["model"] == "enclave"
    assert line["location"] == ON_PREMISES and line["channel"] == "chat"
    assert (line["prompt_tokens"], line["completion_tokens"]) == ("100", "20")
    assert line["latency_ms"] == "1000" and Decimal(line["cost"]) == Decimal("0.01")
    event = AuditEvent.objects.filter(action=Action.AUDIT_EXPORTED).get()
    assert event.detail["export"] == "usage" and event.detail["filters"] == {"model": "enclave"}
    assert len(export(root)) == 2


def test_the_csv_defuses_a_username_that_would_start_a_formula(people, root) -> None:
    formula = make_user("=HYPERLINK(1)", groups=["Legal"])
    make_usage(formula, [people.legal])
    (line,) = export(root)
    assert line["username"] == "'=HYPERLINK(1)"


# --- budgets -----------------------------------------------------------------------------------


def set_budget(user, group: Group, tokens: str):
    return login(user).post(
        reverse("usage:budgets"), {"group": group.pk, "monthly_tokens": tokens}, follow=True
    )


def test_a_superuser_sets_a_groups_budget_and_it_is_audited(people, root) -> None:
    legal = Group.objects.get(name="Legal")
    response = set_budget(root, legal, "1,000")
    assert response.status_code == 200
    assert GroupBudget.objects.get(group=legal).monthly_tokens == 1000
    event = AuditEvent.objects.filter(action=Action.BUDGET_CHANGED).get()
    assert event.actor_username == "root" and event.target_id == str(legal.pk)
    assert event.detail == {"before": None, "after": 1000}
    set_budget(root, legal, "1000")  # the same again: nothing changes
    assert AuditEvent.objects.filter(action=Action.BUDGET_CHANGED).count() == 1
    set_budget(root, legal, "")  # removed
    assert not GroupBudget.objects.filter(group=legal).exists()
    assert AuditEvent.objects.filter(action=Action.BUDGET_CHANGED).order_by("pk").last().detail == {
        "before": 1000,
        "after": None,
    }


def test_the_budgets_page_shows_each_budgets_use_this_month_as_a_bar(people, root) -> None:
    legal = Group.objects.get(name="Legal")
    GroupBudget.objects.create(group=legal, monthly_tokens=1000)
    make_usage(people.teammate, [people.legal], prompt=600, completion=150)
    make_usage(
        people.teammate, [people.legal], prompt=10**6, when=usage.month_start() - timedelta(1)
    )
    html = login(root).get(reverse("usage:budgets")).content.decode()
    row = html.split(f'id="budget-{legal.pk}"')[1].split("</tr>")[0]
    assert '<meter min="0" max="1000"' in row and 'value="750"' in row and "750 of 1000" in row
    assert "over budget" not in row
    assert "Sales" in html and "Collection admins" not in html  # plain groups only


def test_budgets_refuse_bad_numbers_role_groups_and_non_superusers(people, root) -> None:
    legal = Group.objects.get(name="Legal")
    response = set_budget(root, legal, "lots")
    assert b"A budget is a whole number of tokens" in response.content
    assert not GroupBudget.objects.exists()
    admins = roles.role_group("collection_admin")
    assert set_budget(root, admins, "5").status_code == 404
    assert login(root).post(reverse("usage:budgets"), {"group": "x"}).status_code == 404
    assert set_budget(people.owner, legal, "5").status_code == 403
    assert not GroupBudget.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.BUDGET_CHANGED).exists()


def test_a_question_over_budget_is_refused_with_the_message_and_no_model_request(
    people, fake_llm
) -> None:
    GroupBudget.objects.create(group=Group.objects.get(name="Legal"), monthly_tokens=100)
    make_usage(people.teammate, [people.legal], prompt=80, completion=20)
    client = login(people.teammate)
    response = client.post(reverse("chat:ask_new"), {"question": "How long is leave?"})
    assert response.status_code == 429
    assert "Your group Legal has used its 100 tokens for this month" in response.content.decode()
    conversation = Conversation.objects.create(user=people.teammate, title="Earlier")
    for route in ("chat:regenerate", "chat:edit", "chat:ask"):
        response = client.post(reverse(route, args=[conversation.pk]), {"question": "Again?"})
        assert response.status_code == 429, route
    assert fake_llm.requests == []
    assert not QueryRecord.objects.exists()
    assert AuditEvent.objects.filter(action=Action.BUDGET_EXCEEDED).count() == 4
    # Another group's members are not held back by it.
    assert usage.over_budget(people.outsider) == ""


@pytest.fixture
def library(people):
    document = make_document(people.legal, "leave.txt", b"Employees get 27 days of leave.")
    ingest_now(document.pk)
    return document


def test_a_question_under_budget_is_answered_and_appears_on_the_usage_page(
    people, library, fake_llm, root
) -> None:
    """End to end: the chat asks the (fake) model, its token counts land on the usage page."""
    GroupBudget.objects.create(group=Group.objects.get(name="Legal"), monthly_tokens=10_000)
    fake_llm.usage = (321, 45)
    response = login(people.teammate).post(
        reverse("chat:ask_new"), {"question": "How many days of leave?"}
    )
    assert response.status_code == 200
    assert [name for name, _ in read_events(response)][-1] == "done"
    assert len([r for r in fake_llm.requests if r.get("stream")]) == 1

    row = Usage.objects.get()
    assert (row.username, row.prompt_tokens, row.completion_tokens) == ("teammate", 321, 45)
    for viewer in (people.owner, root):
        html = page(viewer)
        assert total(html, "questions") == "1" and total(html, "prompt") == "321"
        assert "<td>teammate</td><td>1</td><td>321</td><td>45</td>" in html
    assert usage.tokens_used(Group.objects.get(name="Legal"), usage.month_start()) == 366
