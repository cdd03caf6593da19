"""The chat's model picker: a conversation's owner picks among the models its scope allows, and
each answer says which model wrote it, on premises or external."""

import re

import pytest
from django.urls import reverse

from assistant.models import AuditEvent, Conversation, Message, ModelEndpoint, QueryRecord
from ingestion.models import Collection
from tests.conftest import login, read_events
from tests.factories import make_user

INTERNAL = Collection.Sensitivity.INTERNAL


@pytest.fixture
def world(people):
    """Sales is internal and approved for the external model `large`; Legal stays restricted.
    `both` reads the two collections."""
    people.sales.sensitivity = INTERNAL
    people.sales.save()
    large = ModelEndpoint.objects.create(
        name="large", base_url="http://large.example.com/v1", model="big", location="external"
    )
    large.approved_collections.add(people.sales)
    people.large, people.both = large, make_user("both", groups=["Legal", "Sales"])
    return people


def conversation_of(user, scope: list[int] | None = None, model: str = "") -> Conversation:
    return Conversation.objects.create(user=user, title="Mine", scope=scope, model=model)


def picker_html(user, conversation: Conversation | None = None) -> str:
    url = reverse("chat:conversation", args=[conversation.pk]) if conversation else "/chat/"
    html = login(user).get(url).content.decode()
    found = re.search(r'<section class="scope model-picker".*?</section>', html, re.S)
    assert found, "the page has a model picker"
    return found[0]


def offered(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]*)"', html)


def test_the_owner_picks_a_model_and_it_is_audited(world) -> None:
    conversation = conversation_of(world.both, scope=[world.sales.pk])
    response = login(world.both).post(
        reverse("chat:model", args=[conversation.pk]), {"model": "large"}
    )
    assert response.status_code == 302
    assert response.url == reverse("chat:conversation", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.model == "large"
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.MODEL_PICKED)
    assert event.target_id == str(conversation.pk)
    assert event.detail == {"before": "", "after": "large"}


def test_an_outsider_cannot_pick_the_model_of_someone_elses_conversation(world) -> None:
    conversation = conversation_of(world.both, scope=[world.sales.pk])
    response = login(world.outsider).post(
        reverse("chat:model", args=[conversation.pk]), {"model": "large"}
    )
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.model == ""
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.MODEL_PICKED).exists()
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.ACCESS_DENIED, target_id=str(conversation.pk)
    ).exists()


def test_the_picker_offers_an_external_model_only_when_the_scope_allows_it(world) -> None:
    only_sales = conversation_of(world.both, scope=[world.sales.pk])
    assert offered(picker_html(world.both, only_sales)) == ["", "enclave", "large"]
    assert "large (external)" in picker_html(world.both, only_sales)

    everything = conversation_of(world.both)  # Legal is restricted: on premises only
    assert offered(picker_html(world.both, everything)) == ["", "enclave"]

    world.legal.sensitivity = INTERNAL
    world.legal.save()  # internal, but not approved for `large`
    assert offered(picker_html(world.both, everything)) == ["", "enclave"]


def test_a_model_the_scope_does_not_allow_is_refused(world) -> None:
    conversation = conversation_of(world.both)
    client = login(world.both)
    for name in ("large", "auto", "nobody"):
        response = client.post(reverse("chat:model", args=[conversation.pk]), {"model": name})
        assert response.status_code == 400
    conversation.refresh_from_db()
    assert conversation.model == ""


def test_a_pick_the_scope_no_longer_allows_is_shown_as_not_used(world) -> None:
    conversation = conversation_of(world.both, scope=[world.sales.pk], model="large")
    assert "is not used" not in picker_html(world.both, conversation)
    login(world.both).post(
        reverse("chat:scope", args=[conversation.pk]),
        {"scope": [world.legal.pk, world.sales.pk]},
    )
    html = picker_html(world.both, conversation)
    assert "“large” is not used" in html
    assert '<option value="" selected>' in html


def test_auto_is_offered_when_an_allowed_model_answers_hard_questions(world) -> None:
    conversation = conversation_of(world.both)
    assert "auto" not in offered(picker_html(world.both, conversation))
    ModelEndpoint.objects.create(
        name="larger",
        base_url="http://larger:8000/v1",
        model="m",
        location="on_premises",
        hard_questions=True,
    )
    assert offered(picker_html(world.both, conversation)) == ["", "auto", "enclave", "larger"]


def test_the_default_option_names_the_admins_default(world, settings) -> None:
    conversation = conversation_of(world.both, scope=[world.sales.pk])
    assert f"Default: {settings.LLM_NAME}" in picker_html(world.both, conversation)
    world.large.default = True
    world.large.save()
    assert "Default: large" in picker_html(world.both, conversation)
    everything = conversation_of(world.both)  # the default may not read Legal
    assert f"Default: {settings.LLM_NAME}" in picker_html(world.both, everything)


def test_with_htmx_the_picker_replaces_itself(world) -> None:
    conversation = conversation_of(world.both, scope=[world.sales.pk])
    response = login(world.both).post(
        reverse("chat:model", args=[conversation.pk]), {"model": "large"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="scope model-picker" id="model-picker"')
    assert '<option value="large" selected>' in html and "Saved" in html


def test_the_chat_pages_render_the_picker_without_inline_script(world) -> None:
    conversation = conversation_of(world.both)
    for url in ("/chat/", reverse("chat:conversation", args=[conversation.pk])):
        html = login(world.both).get(url).content.decode()
        assert 'id="model-choice"' in html
        assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
        assert " style=" not in html
    assert 'form="ask"' in picker_html(world.both)  # the empty chat's belongs to the ask form


def answered(conversation: Conversation, **record: object) -> None:
    query = QueryRecord.objects.create(
        user_ref=conversation.user_id,
        username=conversation.user.username,
        conversation_ref=conversation.pk,
        question="Q?",
        **record,
    )
    Message.objects.create(conversation=conversation, role="user", content="Q?")
    Message.objects.create(conversation=conversation, role="assistant", content="A.", query=query)


def test_each_answer_says_which_model_answered_and_where_it_runs(world) -> None:
    conversation = conversation_of(world.both, scope=[world.sales.pk])
    answered(conversation, endpoint="external", policy={"model": "large", "picked": "large"})
    answered(
        conversation,
        endpoint="on_premises",
        policy={"model": "enclave", "picked": "large", "refused": "a restricted collection"},
    )
    html = login(world.both).get(reverse("chat:conversation", args=[conversation.pk]))
    text = html.content.decode()
    assert "Answered by large, an external model" in text
    assert "Answered by enclave, on premises" in text
    assert "not “large”: it may not read these collections" in text


def test_the_model_name_under_an_answer_is_escaped(world) -> None:
    conversation = conversation_of(world.both)
    answered(conversation, endpoint="on_premises", policy={"model": "<b>bold</b>"})
    text = login(world.both).get(reverse("chat:conversation", args=[conversation.pk]))
    assert "<b>bold</b>" not in text.content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in text.content.decode()


def ask_new(user, **data) -> Conversation:
    response = login(user).post(reverse("chat:ask_new"), {"question": "What is this?", **data})
    assert response.status_code == 200
    read_events(response)
    return Conversation.objects.get(user=user)


def test_a_new_conversation_keeps_the_model_picked_on_the_empty_chat(world, fake_llm) -> None:
    conversation = ask_new(world.both, scope=[world.sales.pk], model="large")
    assert conversation.model == "large"
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED).exists()


def test_a_new_conversation_ignores_a_model_its_scope_does_not_allow(world, fake_llm) -> None:
    conversation = ask_new(world.both, model="large")  # everything: Legal is restricted
    assert conversation.model == ""
    [denied] = AuditEvent.objects.filter(action=AuditEvent.Action.ACCESS_DENIED)
    assert denied.detail["parameters"] == ["model"]
    assert denied.detail["requested"] == {"model": ["large"]}
