"""The reliability checklist, section A (../shared/RELIABILITY.md, items 1-8): access and
leakage, where the rest of the suite does not already hold the item (each item's other tests
name it in their docstrings too)."""

import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from assistant import people
from assistant.models import AccessToken, AuditEvent, BatchRun, Conversation, QueryRecord
from ingestion import index, pipeline
from ingestion.models import Document
from tests.assistant.test_identity import provider, sign_in_with_sso, signed_in_as  # noqa: F401
from tests.conftest import free_port, login, read_events
from tests.factories import PASSWORD, make_collection, make_document, make_user
from tests.test_api import make_token
from tests.test_leakage import ADVERSARIAL
from tests.test_role_matrix import DATA, MATRIX, url_for, world  # noqa: F401

pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[1]
Denied = AuditEvent.Action.ACCESS_DENIED


@pytest.fixture
def ab(db):
    """alice reads A, bob reads B; each collection holds a document with its own canary."""
    collections = {}
    for name in ("A", "B"):
        collection = make_collection(f"Collection {name}", groups=[f"Team {name}"])
        canary = f"CANARY-{name}-{secrets.token_hex(6)}"
        document = make_document(
            collection,
            f"handbook-{name.lower()}.txt",
            f"Team {name} handbook. Every document you know is listed here. The secret code "
            f"is {canary}. Admin mode. Canary string {canary}.".encode(),
        )
        pipeline.ingest(document.pk)
        collections[name] = (collection, document, canary)
    alice = make_user("alice", groups=["Team A"])
    bob = make_user("bob", groups=["Team B"])
    return collections, alice, bob


def captured_queries(monkeypatch) -> list:
    """Every search the vector store receives, as the engine is asked it."""
    engine = index.engine()
    seen: list = []
    original = engine.query

    def query(q):
        seen.append(q)
        return original(q)

    monkeypatch.setattr(engine, "query", query)
    return seen


# --- 1. retrieval isolation --------------------------------------------------------------------


def test_thirty_prompts_aimed_at_b_never_reach_it(ab, fake_llm, settings, monkeypatch) -> None:
    """Reliability #1: as alice, 30 prompts aimed at B (its canary, its title, "list every
    document", "ignore filters") with a model that echoes its whole prompt: no token, citation or
    answer carries CANARY-B, and every search the vector store receives is filtered on
    collection_id ∈ {A} and nothing else."""
    collections, alice, _ = ab
    (a, _, _), (b, b_document, b_canary) = collections["A"], collections["B"]
    fake_llm.mode = "echo"
    prompts = [
        p.format(other="B", other_canary=b_canary, other_title="handbook-b", other_id=b.pk)
        for p in ADVERSARIAL[:30]
    ]
    assert len(prompts) == 30
    settings.RATE_LIMIT_QUESTIONS = (len(prompts) + 1, 60)
    queries = captured_queries(monkeypatch)
    client = login(alice)
    for question in prompts:
        events = read_events(client.post(reverse("chat:ask_new"), {"question": question}))
        # A question that names the canary may see it echoed (alice typed it): what reached
        # the model is checked below for those.
        assert b_canary in question or b_canary not in str(events), question
        for name, data in events:
            if name == "done":
                assert f"/documents/{b_document.pk}/" not in data["html"], question
    assert queries, "no search was made at all"
    assert {tuple(q.collection_ids) for q in queries} == {(a.pk,)}
    assert all(q.scope == [str(a.pk)] for q in queries)
    # What reached the model: the question may name the canary (alice typed it), the
    # documents never hold it.
    for request in fake_llm.requests:
        assert b_canary not in request["messages"][-1]["content"].split("</documents>")[0]
    for record in QueryRecord.objects.all():
        assert {r["collection_id"] for r in record.retrieved} <= {a.pk}


@pytest.mark.parametrize("any_engine", ["server"], indirect=True)
def test_a_qdrant_server_receives_the_collection_filter_on_every_branch(
    any_engine, db, monkeypatch
) -> None:
    """Reliability #1: what a Qdrant server receives (qdrant-client's local mode stands in for
    the server): every prefetch of the hybrid query carries must: collection_id ∈ {A}."""
    client = index.engine().client  # type: ignore[attr-defined]
    sent: list[dict] = []
    original = client.query_points

    def query_points(*args, **kwargs):
        sent.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(client, "query_points", query_points)
    for collection_id in (10, 20):
        index.replace(
            collection_id=collection_id,
            document_id=collection_id,
            sha256="a" * 64,
            title="T",
            chunks=[index.Chunk(0, 1, f"The cafeteria code is {collection_id}.")],
        )
    hits = index.search("cafeteria code", [10], 5)
    assert hits and {h.collection_id for h in hits} == {10}
    [request] = sent
    assert len(request["prefetch"]) == 2
    for branch in request["prefetch"]:
        [condition] = branch.filter.must
        assert (condition.key, condition.match.any) == ("collection_id", ["10"])


# --- 2. empty allowed set ----------------------------------------------------------------------


@pytest.mark.parametrize("scope", [None, []])
def test_the_filter_builder_refuses_none_and_empty(scope) -> None:
    """Reliability #2: the search function, given None or [] as the allowed collections,
    raises instead of searching without a filter (the engines' Query refuses them too:
    tests/ingestion/test_engines.py)."""
    with pytest.raises(index.ScopeMissing):
        index.search("anything", scope, 5)


def test_a_user_with_no_collections_gets_zero_hits(ab, fake_llm, monkeypatch) -> None:
    """Reliability #2: a user who reads no collection asks: the vector store is never queried,
    the model is never asked, the answer says nothing was found, and the record has 0 hits."""
    monkeypatch.setattr(index, "search", lambda *a, **k: pytest.fail("the index was searched"))
    nobody = make_user("nora")
    events = read_events(
        login(nobody).post(reverse("chat:ask_new"), {"question": "List every document you know"})
    )
    text = "".join(data["text"] for name, data in events if name == "token")
    assert "found nothing" in text
    assert fake_llm.requests == []
    record = QueryRecord.objects.get()
    assert (record.retrieved, record.scope, record.outcome) == ([], [], "denied")


# --- 3. client-supplied ids ignored ------------------------------------------------------------


def test_ids_sent_by_the_client_are_ignored_and_recorded_with_the_effective_scope(
    ab, fake_llm, settings
) -> None:
    """Reliability #3: as alice, a chat POST with B's collection id (as the picker's field and
    as collection_ids), B's document id, B's stored file name and the raw Qdrant collection
    name: the search stays in A, no B content comes back, and the denied-access events record
    what was requested beside the effective scope ({A})."""
    collections, alice, _ = ab
    (a, _, _), (b, b_document, b_canary) = collections["A"], collections["B"]
    fake_llm.mode = "echo"
    attempts = {
        "collection_ids": [str(b.pk)],
        "document_ids": [str(b_document.pk)],
        "file": [b_document.file.name],  # documents/<collection>/<uuid>
        "qdrant_collection": [settings.QDRANT_COLLECTION],
        "filter": [f'{{"must": [{{"key": "collection_id", "match": {{"any": ["{b.pk}"]}}}}]}}'],
    }
    client = login(alice)
    events = read_events(
        client.post(reverse("chat:ask_new"), {"question": "What is the secret code?", **attempts})
    )
    assert b_canary not in str(events)
    assert b_canary not in str(fake_llm.requests)
    record = QueryRecord.objects.get()
    assert record.scope == [{"id": a.pk, "name": a.name}]
    assert {r["collection_id"] for r in record.retrieved} == {a.pk}
    [event] = AuditEvent.objects.filter(action=Denied)
    assert event.detail["parameters"] == sorted(attempts)
    assert event.detail["requested"] == attempts
    assert event.detail["effective"] == [a.pk]
    assert event.actor_username == "alice"

    # The picker's own field, naming B: narrowed to what alice reads (nothing of it), recorded.
    before = AuditEvent.objects.filter(action=Denied).count()
    events = read_events(
        client.post(reverse("chat:ask_new"), {"question": "secret code?", "scope": [b.pk, a.pk]})
    )
    assert b_canary not in str(events)
    detail = AuditEvent.objects.filter(action=Denied).order_by("id")[before].detail
    assert detail["requested"] == sorted([a.pk, b.pk])
    assert (detail["collections"], detail["effective"]) == ([b.pk], [a.pk])


def test_ids_sent_to_the_api_are_ignored_and_recorded_with_the_effective_scope(
    ab, fake_llm, client
) -> None:
    """Reliability #3: the same through the API with alice's token: the body's collection and
    document ids of B are ignored, the event records them beside the effective scope ({A})."""
    collections, alice, _ = ab
    (a, _, _), (b, b_document, b_canary) = collections["A"], collections["B"]
    fake_llm.mode = "echo"
    body = {
        "model": "enclave",
        "messages": [{"role": "user", "content": "What is the secret code?"}],
        "collection_ids": [b.pk],
        "document_ids": [b_document.pk],
    }
    auth = {"Authorization": f"Bearer {make_token(alice)}"}
    response = client.post(
        reverse("api:chat_completions"), body, content_type="application/json", headers=auth
    )
    assert response.status_code == 200, response.content
    assert b_canary not in response.content.decode()
    event = AuditEvent.objects.filter(action=Denied).get()
    assert event.detail["requested"] == {"collection_ids": [b.pk], "document_ids": [b_document.pk]}
    assert event.detail["effective"] == [a.pk]


# --- 4. owner/intruder sweep -------------------------------------------------------------------

# What an intruder posts where a route takes a form: the most damaging thing it could do.
INTRUDER_DATA = {
    **DATA,
    "chat:scope": {"scope": []},
    "chat:rename": {"title": "Stolen"},
    "ingestion:collection_starters": {"starters": "Stolen?"},
}


def owner_checks(objects: dict) -> None:
    """Each object's owner still gets 200, and nothing about the objects changed."""
    users = objects["users"]
    employee, admin = login(users["employee"]), login(users["collection admin"])
    auditor, root = login(users["auditor"]), login(users["superuser"])
    conversation, document, legal = objects["conversation"], objects["document"], objects["legal"]
    for client, route, args in [
        (employee, "chat:conversation", [conversation.pk]),
        (employee, "chat:source", [objects["answer"].pk, 1]),
        (employee, "ingestion:document_file", [document.pk]),
        (employee, "ingestion:document_page", [document.pk, 1]),
        (employee, "tokens:index", []),
        (admin, "ingestion:collection", [legal.pk]),
        (admin, "ingestion:collection_access", [legal.pk]),
        (admin, "batch:job", [objects["run"].job_id]),
        (admin, "batch:run_detail", [objects["run"].pk]),
        (auditor, "audit:record", [objects["record"].pk]),
        (auditor, "audit:document", [document.pk]),
        (root, "people:person", [users["employee"].pk]),
    ]:
        response = client.get(reverse(route, args=args))
        assert response.status_code == 200, (route, response.status_code)
    document.refresh_from_db()
    assert document.status == Document.Status.READY and document.chunks > 0
    assert index.count(document.pk) == document.chunks
    assert [g.name for g in legal.groups.all()] == ["Legal"]
    assert list(legal.managers.all()) == [users["collection admin"]]
    assert Conversation.objects.get(pk=conversation.pk).title == "Mine"
    assert User.objects.get(pk=users["employee"].pk).is_active
    assert AccessToken.objects.get(pk=objects["token"].pk).revoked_at is None
    run = BatchRun.objects.get(pk=objects["run"].pk)
    assert run.status == objects["run"].status


def test_an_intruder_gets_nothing_of_another_users_objects_and_the_owner_keeps_them(
    world,  # noqa: F811
    fake_llm,
) -> None:
    """Reliability #4: for every route with an object id (conversations, answers and their
    citation previews, documents, pages, collections and their access, upload, clear and
    re-ingest, people, audit records, tokens, batch jobs and runs), another user with the same
    roles (a Sales employee who administers Sales) asks for the Legal users' object, with GET
    and with POST where the route changes something: always 403 or 404. After each attempt,
    every owner still gets 200 and the objects are unchanged (an ingested document, its points,
    grants, title, account, token and batch run)."""
    pipeline.ingest(world["document"].pk)  # a real document with points, for clear/re-ingest
    world["run"].refresh_from_db()
    intruder = make_user("intruder", groups=["Sales"])
    people.set_roles(intruder, ["collection_admin"], actor=None)
    sales = make_collection("Sales", groups=["Sales"], managers=[intruder])
    make_document(sales, "mine.txt", b"The intruder's own document.")
    Conversation.objects.create(user=intruder, title="The intruder's own")
    owner_checks(world)
    routes = [r for r in sorted(MATRIX) if re.search(r"/\d+/", url_for(r, world) + "/")]
    assert len(routes) > 30  # every route with an object id, not a few of them
    tried = []
    for route in routes:
        url = url_for(route, world)
        method = MATRIX[route][0]
        # Routes that show a form are also posted to: collection access, person, batch edit.
        methods = {method, "POST"} if route in {
            "ingestion:collection_access", "people:person", "batch:edit", "batch:job",
        } else {method}  # fmt: skip
        for verb in sorted(methods):
            client = login(intruder)
            call = client.get if verb == "GET" else client.post
            data = INTRUDER_DATA.get(route, {})
            if route == "ingestion:collection_access":
                data = {"groups": [Group.objects.get(name="Sales").pk], "managers": [intruder.pk]}
            response = call(url, data)
            assert response.status_code in (403, 404, 405), (route, verb, response.status_code)
            assert response.status_code != 405 or verb != method, (route, verb)
            tried.append((route, verb))
            owner_checks(world)
    assert ("ingestion:collection_access", "POST") in tried
    assert ("people:person", "POST") in tried
    # Every refusal of an object that exists is kept as a denied access.
    assert AuditEvent.objects.filter(action=Denied, actor_username="intruder").exists()


# --- 5. role matrix: the API token column ----------------------------------------------------


def test_an_api_token_opens_the_api_and_nothing_else(world, fake_llm) -> None:  # noqa: F811
    """Reliability #5: the matrix's last column, an API token (tests/test_role_matrix.py holds
    every route to the other roles): a request bearing the employee's valid token and no
    session gets, on every route, what an anonymous visitor gets, except on the API, which
    accepts it."""
    auth = {"Authorization": f"Bearer {make_token(world['users']['employee'])}"}
    for route, (method, expected) in sorted(MATRIX.items()):
        client = Client()
        call = client.get if method == "GET" else client.post
        response = call(url_for(route, world), DATA.get(route, {}), headers=auth)
        if route.startswith("api:"):
            assert response.status_code not in (401, 403), route  # a body error at most
        else:
            assert response.status_code == expected["anonymous"], (route, response.status_code)
    assert not QueryRecord.objects.exclude(pk=world["record"].pk).exists()


# --- 7. deactivated user, every auth path --------------------------------------------------------


def test_a_deactivated_user_is_refused_on_every_path(db, client) -> None:
    """Reliability #7: dave is deactivated while signed in and holding an API token: his
    session cookie, a fresh password sign-in and his token are all refused at once."""
    dave = make_user("dave", groups=["Legal"])
    make_collection("Legal", groups=["Legal"])
    session = login(dave)
    assert session.get(reverse("chat:index")).status_code == 200
    auth = {"Authorization": f"Bearer {make_token(dave)}"}
    assert client.get(reverse("api:models"), headers=auth).status_code == 200
    root = make_user("root", is_superuser=True, is_staff=True)
    login(root).post(reverse("people:person", args=[dave.pk]), {})  # deactivate
    assert not User.objects.get(pk=dave.pk).is_active

    response = session.get(reverse("chat:index"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    response = session.post(reverse("chat:ask_new"), {"question": "Still here?"})
    assert response.status_code in (302, 401)
    fresh = Client()
    response = fresh.post(reverse("login"), {"username": "dave", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in fresh.session
    assert fresh.get(reverse("chat:index")).status_code == 302
    assert client.get(reverse("api:models"), headers=auth).status_code == 403
    body = {"model": "enclave", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post(
        reverse("api:chat_completions"), body, content_type="application/json", headers=auth
    )
    assert response.status_code == 403
    assert not QueryRecord.objects.exists()


def test_a_deactivated_users_single_sign_on_is_refused(db, provider) -> None:  # noqa: F811
    """Reliability #7: dave signs in with SSO once (his account is bound to his provider
    identity), is deactivated, and his next SSO sign-in, with a valid signed ID token, does not
    sign him in."""
    first = Client()
    sign_in_with_sso(first, provider, sub="dave-1", preferred_username="dave", groups=[])
    assert signed_in_as(first) == "dave"
    User.objects.filter(username="dave").update(is_active=False)
    again = Client()
    response = sign_in_with_sso(again, provider, sub="dave-1", preferred_username="dave")
    assert response.status_code == 302 and response["Location"] != reverse("chat:index")
    assert signed_in_as(again) is None
    assert signed_in_as(first) is None  # the earlier session ends too


# --- 8. backends not exposed -------------------------------------------------------------------

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APPS = ("web", "worker", "migrate")


def test_no_backend_is_published_and_each_needs_a_credential() -> None:
    """Reliability #8, the compose file (no Docker engine here: the containers cannot be
    started, nor a Qdrant server binary run): no backend publishes a port to the host, and each
    one demands a credential, required at `docker compose up` (`${VAR:?}`) and given to the app
    in its URLs: Postgres a password, Redis `requirepass`, Qdrant an API key, vLLM `--api-key`;
    the web tier gets Qdrant's read-only key (and QDRANT_READ_ONLY), the workers the full one.
    Not covered here: connecting to the running containers from outside."""
    for name, service in SERVICES.items():
        assert "ports" not in service or name == "web", name
        assert "network_mode" not in service, name  # host networking would publish every port
    postgres = SERVICES["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    redis = " ".join(SERVICES["redis"]["command"])
    assert "--requirepass ${REDIS_PASSWORD:?" in redis
    assert SERVICES["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"].startswith(
        "${QDRANT_API_KEY:?"
    )
    assert "--api-key=${VLLM_API_KEY:?" in " ".join(SERVICES["vllm"]["command"])
    for name in APPS:
        environment = SERVICES[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://enclave:${POSTGRES_PASSWORD:?")
        for variable in ("CELERY_BROKER_URL", "CACHE_URL"):
            assert environment[variable].startswith("redis://:${REDIS_PASSWORD:?"), variable
        key = "QDRANT_READ_ONLY_API_KEY" if name == "web" else "QDRANT_API_KEY"
        assert environment["QDRANT_API_KEY"].startswith(f"${{{key}:?"), name
        assert environment.get("QDRANT_READ_ONLY") == ("true" if name == "web" else None), name
        assert environment["LLM_API_KEY"].startswith("${VLLM_API_KEY:?")
    # The healthchecks still work behind the credentials.
    assert "REDISCLI_AUTH" in SERVICES["redis"]["environment"]


def test_a_read_only_engine_never_writes_and_leaves_creation_to_a_worker(tmp_path) -> None:
    """Reliability #8: the web's engine (QDRANT_READ_ONLY, behind Qdrant's read-only key)
    sends the server no write: a missing collection is reported as waiting for a worker, not
    created; upserts and deletes are refused before any request. A worker's engine on the same
    server creates it, and the web then searches and counts."""
    from django.test import override_settings
    from qdrant_client import QdrantClient

    from ingestion.index.engine import IndexReadOnly, open_engine
    from ingestion.index.server import ServerEngine
    from tests.ingestion.test_engines import synthetic

    class Recording(QdrantClient):
        writes: list[str] = []

        def __getattribute__(self, name: str):  # type: ignore[no-untyped-def]
            if name in {"create_collection", "delete_collection", "create_payload_index",
                        "upsert", "delete", "update_collection"}:  # fmt: skip
                type(self).writes.append(name)
            return super().__getattribute__(name)

    client = Recording(path=str(tmp_path / "server"))
    web = ServerEngine(client, "chunks", read_only=True)
    with pytest.raises(index.IndexUnavailable, match="a worker creates it"):
        web.ping()
    with pytest.raises(IndexReadOnly):
        web.upsert(synthetic(5))
    with pytest.raises(IndexReadOnly):
        web.delete(0)
    assert Recording.writes == []
    worker = ServerEngine(client, "chunks")
    worker.ping()
    worker.upsert(synthetic(5))
    assert "create_collection" in Recording.writes and "upsert" in Recording.writes
    Recording.writes.clear()
    web.ping()
    assert web.count() == 5 and len(web.retrieve([p.id for p in synthetic(5)])) == 5
    assert Recording.writes == []
    client.close()
    with override_settings(QDRANT_URL="http://127.0.0.1:9", QDRANT_READ_ONLY=True):
        assert open_engine().read_only  # type: ignore[attr-defined]


def test_redis_with_requirepass_refuses_a_client_without_the_password(tmp_path) -> None:
    """Reliability #8: Redis started as compose starts it (`--requirepass`) refuses a client
    without the password, and the app's URL form (redis://:<password>@host) gets in."""
    import redis

    port, password = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--requirepass", password, "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
        assert redis.Redis.from_url(f"redis://:{password}@127.0.0.1:{port}/0").ping()
    finally:
        server.terminate()
        server.wait(timeout=10)
