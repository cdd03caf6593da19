"""The model policy in the API and in batch jobs, through HTTP: a second stand-in server plays an
approved external model and records every request it gets, so the tests can prove what never
reaches it (a restricted collection's passages, titles and questions, history included)."""

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.urls import reverse

from assistant.audit.models import AuditEvent, QueryRecord
from assistant.batch import jobs
from assistant.batch.models import BatchJob
from assistant.models import GroupBudget, ModelEndpoint, Usage
from ingestion.models import Collection
from tests.conftest import login
from tests.factories import ingest_now, make_collection, make_document, make_group
from tests.fake_llm import FakeLLM
from tests.test_api import make_token
from tests.test_usage import make_usage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

CANARY = "RESTRICTED-CANARY-7731"
QUESTION = "How long do refunds take?"
SUMMARY = json.dumps({"summary": "A refunds policy.", "sources": [1]})


@pytest.fixture
def handbook(people) -> Collection:
    """An internal collection the Legal group reads and the owner manages."""
    collection = make_collection("Handbook", groups=["Legal"], managers=[people.owner])
    collection.sensitivity = Collection.Sensitivity.INTERNAL
    collection.save()
    return collection


@pytest.fixture
def external(handbook, settings) -> Iterator[FakeLLM]:
    """The stand-in external endpoint, approved for the handbook (and nothing else)."""
    fake = FakeLLM()
    fake.reply = lambda body: SUMMARY
    row = ModelEndpoint.objects.create(
        name="big",
        base_url=fake.url,
        model="big-model",
        location=ModelEndpoint.Location.EXTERNAL,
        input_price=Decimal("2.5"),
        output_price=Decimal("10"),
    )
    row.approved_collections.set([handbook])
    yield fake
    fake.close()


@pytest.fixture
def library(people, handbook):
    """Legal (restricted) holds the canary; the handbook (internal) holds a plain policy."""
    secret = make_document(
        people.legal, "canary.txt", f"{CANARY}: refunds take 14 days.".encode(), user=people.owner
    )
    policy = make_document(
        handbook, "handbook.txt", b"Refunds take 30 days from the handbook.", user=people.owner
    )
    for document in (secret, policy):
        ingest_now(document.pk)
    return secret, policy


def post(secret: str, model: str, messages: list[dict] | None = None, **extra: object):
    from django.test import Client

    body = {"model": model, "messages": messages or [{"role": "user", "content": QUESTION}]}
    return Client().post(
        reverse("api:chat_completions"),
        {**body, **extra},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def listed(secret: str) -> list[str]:
    from django.test import Client

    auth = {"Authorization": f"Bearer {secret}"}
    response = Client().get(reverse("api:models"), headers=auth)
    assert response.status_code == 200
    return [m["id"] for m in response.json()["data"]]


# --- the API ----------------------------------------------------------------------------------


def test_an_external_model_is_refused_over_a_restricted_collection_and_never_called(
    people, library, fake_llm, external
) -> None:
    response = post(make_token(people.teammate, scope=[people.legal]), "big")

    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "model_not_allowed",
        "model",
        "permission_error",
    )
    assert "restricted collection" in error["message"] and "enclave" in error["message"]
    assert external.requests == [] and fake_llm.requests == []
    assert not QueryRecord.objects.exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert event.detail["model"] == "big" and event.detail["effective"] == [people.legal.pk]


def test_a_token_over_both_collections_is_refused_the_external_model_too(
    people, library, fake_llm, external
) -> None:
    response = post(make_token(people.teammate), "big")

    assert response.status_code == 403
    assert external.requests == []


def test_an_approved_external_model_answers_over_an_internal_collection(
    people, library, fake_llm, external
) -> None:
    response = post(make_token(people.teammate, scope=[library[1].collection]), "big")

    assert response.status_code == 200, response.content
    assert response.json()["model"] == "big"
    [request] = external.requests
    assert request["model"] == "big-model"
    assert "Refunds take 30 days from the handbook." in json.dumps(request)
    assert fake_llm.requests == []  # the local model answered nothing
    record = QueryRecord.objects.get()
    answered = (record.endpoint, record.model, record.policy["model"])
    assert answered == ("external", "big-model", "big")
    assert record.policy["restricted"] == [] and "approved" in record.policy["rule"]


def test_a_streamed_answer_names_the_model_that_answered(
    people, library, fake_llm, external
) -> None:
    response = post(make_token(people.teammate, scope=[library[1].collection]), "big", stream=True)

    frames = b"".join(response.streaming_content).decode().strip().split("\n\n")
    chunks = [json.loads(f[6:]) for f in frames[:-1]]
    assert {c["model"] for c in chunks} == {"big"}
    assert len(external.requests) == 1


def test_the_built_in_model_answers_when_named_and_is_said_to(
    people, library, fake_llm, external
) -> None:
    response = post(make_token(people.teammate, scope=[people.legal]), "enclave")

    assert response.status_code == 200 and response.json()["model"] == "enclave"
    assert len(fake_llm.requests) == 1 and external.requests == []
    assert QueryRecord.objects.get().endpoint == "on_premises"


def test_a_restricted_canary_in_the_clients_own_history_never_reaches_the_external_model(
    people, library, fake_llm, external, settings
) -> None:
    """The client's earlier messages may have come from anywhere (an answer over the restricted
    collection, pasted back): an external model gets none of them."""
    settings.QUERY_REWRITE = False
    external.mode = "echo"  # the leakiest model there could be
    messages = [
        {"role": "user", "content": f"What does {CANARY} say?"},
        {"role": "assistant", "content": f"{CANARY}: refunds take 14 days [1]."},
        {"role": "user", "content": QUESTION},
    ]
    response = post(make_token(people.teammate, scope=[library[1].collection]), "big", messages)

    assert response.status_code == 200, response.content
    assert external.requests and CANARY not in json.dumps(external.requests)
    assert "Refunds take 30 days" in json.dumps(external.requests)
    assert QueryRecord.objects.get().policy["history_withheld"] == 2


def test_no_request_of_any_kind_carries_the_canary_to_the_external_model(
    people, library, fake_llm, external, settings
) -> None:
    """Every way a question can be put to it, over every scope the teammate has."""
    settings.QUERY_REWRITE = True
    external.mode = "echo"
    both, legal, internal = (
        make_token(people.teammate),
        make_token(people.teammate, scope=[people.legal]),
        make_token(people.teammate, scope=[library[1].collection]),
    )
    history = [
        {"role": "user", "content": f"{CANARY}?"},
        {"role": "assistant", "content": CANARY},
        {"role": "user", "content": "And refunds?"},
    ]
    for secret in (both, legal, internal):
        for model in ("big", "auto", "enclave"):
            post(secret, model)
            post(secret, model, history)
            post(secret, model, stream=True)
    assert external.requests
    assert CANARY not in json.dumps(external.requests)


def test_models_lists_only_those_the_tokens_collections_allow(
    people, library, fake_llm, external, client
) -> None:
    legal, internal = (
        make_token(people.teammate, scope=[people.legal]),
        make_token(people.teammate, scope=[library[1].collection]),
    )
    assert listed(legal) == ["enclave"]
    assert listed(make_token(people.teammate)) == ["enclave"]
    assert listed(internal) == ["enclave", "big"]
    # Auto is offered once an allowed model takes the hard questions.
    ModelEndpoint.objects.update(hard_questions=True)
    assert listed(internal) == ["enclave", "big", "auto"]
    assert listed(legal) == ["enclave"]

    def retrieve(secret: str, name: str) -> int:
        url = reverse("api:model", args=[name])
        return client.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code

    assert (retrieve(internal, "big"), retrieve(legal, "big")) == (200, 403)
    assert (retrieve(legal, "enclave"), retrieve(legal, "gpt-4")) == (200, 404)
    # A disabled model is unknown.
    ModelEndpoint.objects.update(enabled=False)
    assert listed(internal) == ["enclave"]
    assert post(internal, "big").json()["error"]["code"] == "model_not_found"
    assert external.requests == []


def test_a_group_over_its_monthly_budget_gets_429_insufficient_quota(
    people, library, fake_llm, external
) -> None:
    secret = make_token(people.teammate)
    GroupBudget.objects.create(group=make_group("Legal"), monthly_tokens=100)
    make_usage(people.teammate, [], prompt=90, completion=10)

    response = post(secret, "enclave")

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota" and "Legal" in error["message"]
    assert fake_llm.requests == [] and external.requests == []
    assert not QueryRecord.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BUDGET_EXCEEDED).count() == 1


# --- batch jobs -------------------------------------------------------------------------------


def summarise(people, collections: list[Collection], model: str) -> BatchJob:
    return jobs.create_job(
        people.owner,
        name="Summaries",
        kind="summarise",
        collection_ids=[c.pk for c in collections],
        spec={"length": "short", "audience": ""},
        model=model,
    )


def run_job(job: BatchJob, user):
    run = jobs.start(job, user)
    jobs.run_now(run.pk)
    run.refresh_from_db()
    return run


def test_a_batch_job_over_a_restricted_collection_never_calls_the_external_model(
    people, library, fake_llm, external, settings
) -> None:
    fake_llm.reply = lambda body: SUMMARY
    run = run_job(summarise(people, [people.legal], "big"), people.owner)

    assert run.status == "done" and run.model == "enclave"
    assert external.requests == [] and len(fake_llm.requests) == 1
    record = run.results.get().record
    assert (record.endpoint, record.model) == ("on_premises", settings.LLM_MODEL)
    assert record.policy["picked"] == "big" and record.policy["restricted"] == [people.legal.pk]
    assert "restricted" in record.policy["refused"] and record.policy["model"] == "enclave"
    usage = Usage.objects.get()
    assert (usage.model, usage.location, usage.record_id) == ("enclave", "on_premises", record.pk)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.channel) == (100, 20, "batch")
    # The run page says which model read the documents, and that the pick was not allowed.
    page = login(people.owner).get(reverse("batch:run_detail", args=[run.pk])).content.decode()
    assert "model enclave (On premises)" in page and "big was picked" in page


def test_a_batch_job_over_an_approved_internal_collection_uses_the_external_model(
    people, library, fake_llm, external, handbook
) -> None:
    run = run_job(summarise(people, [handbook], "big"), people.owner)

    assert run.status == "done" and run.model == "big"
    assert fake_llm.requests == [] and len(external.requests) == 1
    assert "Refunds take 30 days from the handbook." in json.dumps(external.requests)
    assert external.requests[0]["model"] == "big-model"
    record = run.results.get().record
    answered = (record.endpoint, record.model, record.policy["model"])
    assert answered == ("external", "big-model", "big")
    assert "refused" not in record.policy
    usage = Usage.objects.get()
    assert (usage.model, usage.location) == ("big", "external")
    assert usage.cost == Decimal("0.00045")  # 100 in at 2.5, 20 out at 10, per million
    assert list(usage.collections.all()) == [handbook]
    page = login(people.owner).get(reverse("batch:run_detail", args=[run.pk])).content.decode()
    assert "model big (External)" in page and "was picked" not in page


def test_a_batch_job_over_both_keeps_every_document_on_premises(
    people, library, fake_llm, external, handbook
) -> None:
    """One restricted collection in the job: even the handbook's documents stay local."""
    fake_llm.reply = lambda body: SUMMARY
    run = run_job(summarise(people, [people.legal, handbook], "big"), people.owner)

    assert external.requests == [] and len(fake_llm.requests) == 2
    assert {r.record.endpoint for r in run.results.all()} == {"on_premises"}
    assert Usage.objects.filter(model="enclave").count() == 2


def test_a_restricted_collection_made_so_after_the_start_keeps_the_run_local(
    people, library, fake_llm, external, handbook
) -> None:
    """The policy is decided again when the documents are read, not only at the start."""
    fake_llm.reply = lambda body: SUMMARY
    run = jobs.start(summarise(people, [handbook], "big"), people.owner)
    assert run.model == "big"
    Collection.objects.filter(pk=handbook.pk).update(sensitivity="restricted")
    jobs.run_now(run.pk)
    run.refresh_from_db()

    assert external.requests == [] and len(fake_llm.requests) == 1
    record = run.results.get().record
    assert run.model == "enclave" and record is not None and record.endpoint == "on_premises"


def test_a_batch_job_is_not_started_over_the_budget(people, library, fake_llm, external) -> None:
    GroupBudget.objects.create(group=make_group("Legal"), monthly_tokens=1)
    people.owner.groups.add(make_group("Legal"))
    make_usage(people.owner, [], prompt=5, completion=0)
    job = summarise(people, [people.legal], "")

    response = login(people.owner).post(reverse("batch:run", args=[job.pk]), follow=True)

    assert "has used its" in response.content.decode()
    assert not job.runs.exists() and fake_llm.requests == []
    assert AuditEvent.objects.filter(action=AuditEvent.Action.BUDGET_EXCEEDED).exists()


def test_the_job_form_saves_the_model_picked(people, library, fake_llm, external) -> None:
    owner = login(people.owner)
    form = {
        "name": "Summaries",
        "kind": "summarise",
        "collections": [people.legal.pk],
        "length": "short",
        "model": "big",
    }
    page = owner.get(reverse("batch:create")).content.decode()
    assert '<option value="big">big (External)</option>' in page

    assert owner.post(reverse("batch:create"), form).status_code == 302
    job = BatchJob.objects.get()
    assert job.model == "big"
    edit = owner.get(reverse("batch:edit", args=[job.pk])).content.decode()
    assert '<option value="big" selected>' in edit
    response = owner.post(reverse("batch:edit", args=[job.pk]), {**form, "model": "gpt-4"})
    assert response.status_code == 400
    assert "Choose a model from the list" in response.content.decode()
    job.refresh_from_db()
    assert job.model == "big"
    # Nobody else sees or edits the job, its model included.
    outsider = login(people.outsider)
    assert outsider.get(reverse("batch:edit", args=[job.pk])).status_code in (403, 404)
    assert outsider.post(reverse("batch:edit", args=[job.pk]), form).status_code in (403, 404)
    job.refresh_from_db()
    assert job.model == "big"


def test_a_run_stops_when_the_budget_is_spent_and_can_resume_later(
    people, library, fake_llm, external, handbook, settings
) -> None:
    settings.BATCH_CONCURRENCY = 1
    fake_llm.reply = lambda body: SUMMARY
    people.owner.groups.add(make_group("Legal"))
    budget = GroupBudget.objects.create(group=make_group("Legal"), monthly_tokens=100)

    run = run_job(summarise(people, [people.legal, handbook], ""), people.owner)

    assert run.status == "failed" and "budget" in run.error
    assert len(fake_llm.requests) == 1 and run.results.filter(status="pending").count() == 1
    budget.monthly_tokens = 10_000
    budget.save()
    assert jobs.resume(run, people.owner)
    jobs.run_now(run.pk)
    run.refresh_from_db()
    assert run.status == "done" and len(fake_llm.requests) == 2
