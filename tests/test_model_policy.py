"""Several models, one policy: a stand-in external endpoint that records every request proves
that nothing from a restricted collection (passage, title, question or answer) ever reaches it,
whatever the conversation picked, through follow-ups, regenerate and edit-and-resend too."""

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.urls import reverse

from assistant import endpoints
from assistant.models import Conversation, ModelEndpoint, QueryRecord, Usage
from ingestion.models import Collection
from tests.conftest import login, read_events
from tests.factories import ingest_now, make_auditor, make_collection, make_document
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.embedded

CANARY = "CANARY-7Q"
SECRET = f"Project {CANARY} is the codename of the merger with Globex, closing in March."
HANDBOOK = "Employees get 27 days of paid annual leave each year."
WIKI = "The office coffee machine is descaled every Friday afternoon."
LOCAL_ANSWER = "Answered on premises."
EXTERNAL_ANSWER = "Answered outside."


@pytest.fixture
def external(fake_llm) -> Iterator[FakeLLM]:
    """A second stand-in server, registered as an external model; the local one answers
    otherwise (fake_llm is the built-in model)."""
    fake_llm.tokens = [LOCAL_ANSWER]
    server = FakeLLM()
    server.tokens = [EXTERNAL_ANSWER]
    yield server
    server.close()


@pytest.fixture
def big(external) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="big-external",
        base_url=external.url,
        model="gpt-x",
        location=ModelEndpoint.Location.EXTERNAL,
        input_price=Decimal("2.50"),
        output_price=Decimal("10.00"),
        enabled=True,
        hard_questions=True,
    )


def collection(name: str, sensitivity: str, *texts: str) -> Collection:
    made = make_collection(name, groups=["Legal"])
    made.sensitivity = sensitivity
    made.save(update_fields=["sensitivity"])
    for n, text in enumerate(texts, start=1):
        ingest_now(make_document(made, f"{name.lower()}-{n}.txt", text.encode()).pk)
    return made


@pytest.fixture
def secrets(people) -> Collection:
    """Restricted, the default sensitivity, made explicit here."""
    return collection("Secrets", Collection.Sensitivity.RESTRICTED, SECRET)


@pytest.fixture
def handbook(people, big) -> Collection:
    approved = collection("Handbook", Collection.Sensitivity.INTERNAL, HANDBOOK)
    big.approved_collections.add(approved)
    return approved


@pytest.fixture
def wiki(people) -> Collection:
    return collection("Wiki", Collection.Sensitivity.INTERNAL, WIKI)


def conversation_over(user, *collections: Collection, model: str = "big-external"):
    return Conversation.objects.create(user=user, scope=[c.pk for c in collections], model=model)


def ask(user, conversation: Conversation, question: str) -> list[tuple[str, dict]]:
    url = reverse("chat:ask", args=[conversation.pk])
    return read_events(login(user).post(url, {"question": question}))


def answer_of(events: list[tuple[str, dict]]) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


def seen_by(server: FakeLLM) -> str:
    return json.dumps(server.requests)


def latest() -> QueryRecord:
    return QueryRecord.objects.latest("id")


def test_a_restricted_collection_in_scope_keeps_the_picked_external_model_out(
    people, secrets, handbook, external, fake_llm, settings
) -> None:
    conversation = conversation_over(people.teammate, secrets)
    events = ask(people.teammate, conversation, f"When does project {CANARY} close?")

    assert external.requests == []
    assert answer_of(events) == LOCAL_ANSWER
    assert CANARY in seen_by(fake_llm)
    record = latest()
    assert (record.endpoint, record.model) == ("on_premises", settings.LLM_MODEL)
    assert record.policy["picked"] == "big-external" and record.policy["model"] == "enclave"
    assert record.policy["refused"] and record.policy["restricted"] == [secrets.pk]


def test_an_approved_internal_collection_is_answered_by_the_external_model_and_priced(
    people, handbook, external, fake_llm
) -> None:
    external.usage = (1000, 50)
    conversation = conversation_over(people.teammate, handbook)
    events = ask(people.teammate, conversation, "How many days of paid annual leave?")

    assert answer_of(events) == EXTERNAL_ANSWER
    assert len(external.requests) == 1 and external.requests[0]["model"] == "gpt-x"
    assert HANDBOOK in seen_by(external)
    assert not [r for r in fake_llm.requests if r.get("stream")]  # the local model wrote nothing
    record = latest()
    assert (record.endpoint, record.model) == ("external", "gpt-x")
    assert record.policy["model"] == "big-external" and record.policy["restricted"] == []
    assert "refused" not in record.policy
    usage = Usage.objects.get(record=record)
    assert (usage.model, usage.location) == ("big-external", "external")
    assert (usage.prompt_tokens, usage.completion_tokens) == (1000, 50)
    assert usage.cost == (1000 * Decimal("2.50") + 50 * Decimal("10.00")) / 1_000_000
    assert list(usage.collections.all()) == [handbook]
    # The auditor sees which model server answered and why it was allowed, on the record's
    # page and in the export.
    auditor = login(make_auditor())
    page = auditor.get(reverse("audit:record", args=[record.pk])).content.decode()
    assert "External model" in page and "model=big-external" in page
    export = b"".join(auditor.get(reverse("audit:export", args=["csv"])).streaming_content)
    assert ',external,"{""model"": ""big-external""' in export.decode()


def test_an_internal_collection_not_approved_never_reaches_the_external_model(
    people, wiki, handbook, external, fake_llm
) -> None:
    for scope in ([wiki], [wiki, handbook]):
        conversation = conversation_over(people.teammate, *scope)
        assert answer_of(ask(people.teammate, conversation, "When is the coffee machine descaled?"))
        assert latest().endpoint == "on_premises"
        assert latest().policy["refused"] == "not approved for every collection in scope"
    assert external.requests == []


def test_a_mixed_scope_with_a_restricted_collection_never_reaches_the_external_model(
    people, secrets, handbook, external, fake_llm
) -> None:
    conversation = conversation_over(people.teammate, secrets, handbook)
    ask(people.teammate, conversation, "How many days of paid annual leave?")
    ask(people.teammate, conversation, f"When does project {CANARY} close?")

    assert external.requests == []
    assert [r.endpoint for r in QueryRecord.objects.all()] == ["on_premises", "on_premises"]
    assert latest().policy["restricted"] == [secrets.pk]


def test_a_follow_up_sent_outside_carries_no_restricted_exchange(
    people, secrets, handbook, external, fake_llm
) -> None:
    # The leakiest local model: its answer repeats the whole prompt, canary included.
    fake_llm.mode = "echo"
    conversation = conversation_over(people.teammate, secrets)
    first = f"When does project {CANARY} close?"
    events = ask(people.teammate, conversation, first)
    assert CANARY in answer_of(events) and "secrets-1" in answer_of(events)
    assert external.requests == []

    # Narrowed through the chat's own scope form, as a user would.
    url = reverse("chat:scope", args=[conversation.pk])
    login(people.teammate).post(url, {"scope": [handbook.pk]})
    conversation.refresh_from_db()
    assert conversation.scope == [handbook.pk]
    events = ask(people.teammate, conversation, "How many days of paid annual leave?")

    assert answer_of(events) == EXTERNAL_ANSWER
    sent = seen_by(external)
    assert HANDBOOK in sent
    assert CANARY not in sent and "Globex" not in sent and "secrets-1" not in sent  # nor title
    assert "When does project" not in sent
    record = latest()
    assert record.endpoint == "external" and record.policy["history_withheld"] == 2
    # The local model still sees the whole conversation when it answers next.
    conversation.model = ""
    conversation.save(update_fields=["model"])
    ask(people.teammate, conversation, "And how many days of sick leave?")
    assert first in json.dumps(fake_llm.requests[-1])


def test_regenerate_and_edit_obey_the_policy(people, secrets, handbook, external, fake_llm) -> None:
    fake_llm.mode = "echo"
    client = login(people.teammate)
    conversation = conversation_over(people.teammate, secrets)
    ask(people.teammate, conversation, f"When does project {CANARY} close?")
    regenerate = reverse("chat:regenerate", args=[conversation.pk])
    edit = reverse("chat:edit", args=[conversation.pk])

    # Over the restricted collection: the external model is refused for both.
    assert CANARY in answer_of(read_events(client.post(regenerate)))
    events = read_events(client.post(edit, {"question": f"Who is the partner of {CANARY}?"}))
    assert CANARY in answer_of(events)
    assert external.requests == []
    assert [r.endpoint for r in QueryRecord.objects.all()] == ["on_premises"] * 3

    # Narrowed to the approved collection: both go outside, without the restricted exchange.
    conversation.scope = [handbook.pk]
    conversation.save(update_fields=["scope"])
    ask(people.teammate, conversation, "How many days of paid annual leave?")
    assert answer_of(read_events(client.post(regenerate))) == EXTERNAL_ANSWER
    assert latest().regenerates_ref and latest().endpoint == "external"
    events = read_events(client.post(edit, {"question": "How much paid annual leave is there?"}))
    assert answer_of(events) == EXTERNAL_ANSWER
    assert latest().edits_ref and latest().endpoint == "external"
    assert latest().policy["history_withheld"] == 2

    sent = seen_by(external)
    assert len(external.requests) == 3 and HANDBOOK in sent
    assert CANARY not in sent and "Globex" not in sent and "Who is the partner" not in sent
    assert "secrets-1" not in sent


def test_regenerating_a_restricted_question_after_narrowing_stays_on_premises(
    people, secrets, handbook, external, fake_llm
) -> None:
    conversation = conversation_over(people.teammate, secrets)
    question = f"How many days of paid annual leave do the {CANARY} merger staff get?"
    ask(people.teammate, conversation, question)
    conversation.scope = [handbook.pk]
    conversation.save(update_fields=["scope"])

    events = read_events(
        login(people.teammate).post(reverse("chat:regenerate", args=[conversation.pk]))
    )

    assert latest().regenerates_ref and latest().retrieved  # the handbook answers it
    assert answer_of(events) == LOCAL_ANSWER
    assert latest().policy["restricted"] == [secrets.pk] and latest().scope[0]["name"] == "Handbook"
    # Nor a regenerate of the regenerate, nor as history of the next question sent outside.
    read_events(login(people.teammate).post(reverse("chat:regenerate", args=[conversation.pk])))
    assert latest().endpoint == "on_premises"
    events = ask(people.teammate, conversation, "How much paid annual leave is there?")
    assert answer_of(events) == EXTERNAL_ANSWER and latest().policy["history_withheld"] == 2
    assert CANARY not in seen_by(external) and "merger" not in seen_by(external)


@pytest.fixture
def policies(people, big) -> Collection:
    """An approved internal collection of three documents on the same subject."""
    approved = collection(
        "Policies",
        Collection.Sensitivity.INTERNAL,
        "Refunds of damaged goods take 14 days.",
        "Refunds of unopened goods take 30 days.",
        "Refunds of sale goods take 7 days.",
    )
    big.approved_collections.add(approved)
    return approved


def test_auto_sends_a_question_spanning_several_documents_to_the_larger_model(
    people, policies, handbook, external, fake_llm, settings
) -> None:
    assert settings.ROUTE_MIN_DOCUMENTS == 3
    conversation = conversation_over(people.teammate, policies, model="auto")
    events = ask(people.teammate, conversation, "How long do refunds of goods take?")

    assert answer_of(events) == EXTERNAL_ANSWER
    record = latest()
    assert len({s["document_id"] for s in record.retrieved}) >= 3
    assert record.endpoint == "external" and record.policy["model"] == "big-external"
    assert record.policy["route"] == "the passages span 3 documents"

    single = conversation_over(people.teammate, handbook, model="auto")
    events = ask(people.teammate, single, "How many days of paid annual leave?")
    assert answer_of(events) == LOCAL_ANSWER
    assert latest().endpoint == "on_premises" and latest().policy["route"] == "default"
    assert len(external.requests) == 1


def test_auto_never_sends_a_hard_question_outside_with_a_restricted_collection_in_scope(
    people, policies, secrets, external, fake_llm
) -> None:
    conversation = conversation_over(people.teammate, policies, secrets, model="auto")
    ask(people.teammate, conversation, "How long do refunds of goods take?")

    record = latest()
    assert len({s["document_id"] for s in record.retrieved}) >= 3
    assert record.endpoint == "on_premises" and record.policy["route"] == "default"
    assert external.requests == []


def test_a_disabled_external_model_is_never_used(people, big, handbook, external, fake_llm) -> None:
    big.enabled = False
    big.save(update_fields=["enabled"])
    conversation = conversation_over(people.teammate, handbook)
    assert answer_of(ask(people.teammate, conversation, "How many days of paid annual leave?"))

    assert external.requests == []
    record = latest()
    assert record.endpoint == "on_premises" and record.policy["model"] == "enclave"
    assert record.policy["refused"] == "not a registered, enabled model"


def test_an_unknown_model_falls_back_to_the_default_and_is_recorded(
    people, handbook, external, fake_llm, settings
) -> None:
    conversation = conversation_over(people.teammate, handbook, model="no-such-model")
    events = ask(people.teammate, conversation, "How many days of paid annual leave?")

    assert answer_of(events) == LOCAL_ANSWER
    assert external.requests == []
    record = latest()
    assert (record.endpoint, record.model) == ("on_premises", settings.LLM_MODEL)
    assert record.policy["picked"] == "no-such-model" and record.policy["model"] == "enclave"
    assert record.policy["refused"] == "not a registered, enabled model"


def test_an_api_key_is_read_from_the_environment_or_a_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BIG_KEY", "sk-from-env")
    keyed = endpoints.Endpoint("big", "http://x/v1", "gpt-x", "external", key_env="BIG_KEY")
    assert keyed.api_key() == "sk-from-env"

    secret = tmp_path / "key"
    secret.write_text("sk-from-file\n")
    filed = endpoints.Endpoint("big", "http://x/v1", "gpt-x", "external", key_file=str(secret))
    assert filed.api_key() == "sk-from-file"
    secret.write_text("sk-rotated\n")
    assert filed.api_key() == "sk-rotated"  # read at each use


def test_a_missing_api_key_is_empty(tmp_path, monkeypatch, settings) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    unset = endpoints.Endpoint("big", "http://x/v1", "gpt-x", "external", key_env="NO_SUCH_KEY")
    assert unset.api_key() == ""
    gone = tmp_path / "absent"
    missing = endpoints.Endpoint("big", "http://x/v1", "gpt-x", "external", key_file=str(gone))
    assert missing.api_key() == ""
    # The built-in model's key comes from its own setting, never from a registered model's.
    assert endpoints.builtin().api_key() == settings.LLM_API_KEY


def test_the_oldest_turns_give_way_when_the_prompt_would_not_fit_the_models_context(
    people, handbook, big, external
) -> None:
    """A model's registered context length bounds what is sent: the documents and the question
    always go, the oldest turns are dropped first, and the record says how many."""
    external.tokens = ["Long answer. " * 150]  # ~2,000 characters an answer
    conversation = conversation_over(people.teammate, handbook)
    for n in range(3):
        ask(people.teammate, conversation, f"Question {n}: how many days of paid annual leave?")
    big.context_length = 1200  # tokens; the answer's max_tokens (384) comes off it
    big.save(update_fields=["context_length"])
    ask(people.teammate, conversation, "And how many for part-time staff?")

    messages = external.requests[-1]["messages"]
    assert HANDBOOK in messages[-1]["content"] and "part-time" in messages[-1]["content"]
    assert "Question 0" not in json.dumps(messages)  # the oldest went first
    assert messages[1]["role"] == "user"  # never an answer without its question
    dropped = latest().policy["history_dropped_for_context"]
    assert dropped >= 2 and len(messages) == 2 + 6 - dropped  # system, kept turns, question
    assert sum(len(m["content"]) for m in messages) // 3 <= 1200 - 384
