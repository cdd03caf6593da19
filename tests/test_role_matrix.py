"""Every route × every role, against the matrix written in README.md."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from assistant import people
from assistant.models import (
    AccessToken,
    BatchJob,
    BatchRun,
    Conversation,
    Message,
    ModelEndpoint,
    QueryRecord,
)
from ingestion import pages
from ingestion.parsing import Page
from tests.factories import make_collection, make_document, make_user

ROLES = ["anonymous", "employee", "collection admin", "auditor", "deactivated", "superuser"]


def read_matrix() -> dict[str, tuple[str, dict[str, int]]]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("<!-- role-matrix -->")[1].split("<!-- /role-matrix -->")[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.startswith("|")]
    matrix = {}
    for row in rows:
        route, method, *codes = [cell.strip() for cell in row.strip("|").split("|")]
        matrix[route] = (method, dict(zip(ROLES, map(int, codes), strict=True)))
    return matrix


MATRIX = read_matrix()


def route_names(patterns=None, namespace: str = "") -> set[str]:
    names = set()
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            names |= route_names(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.name:
            names.add(f"{namespace}:{p.name}" if namespace else p.name)
    return names


def test_the_matrix_covers_every_route() -> None:
    """Reliability #5: no route is missing from the documented matrix."""
    assert route_names() == set(MATRIX)


# The answer's source, as the chat stores it (opened by chat:source).
SOURCE = {"n": 1, "title": "a", "page": 1, "chunk_no": 0, "heading": "", "text": "Legal words"}


@pytest.fixture
def world(db):
    admin = make_user("coladmin")
    people.set_roles(admin, ["collection_admin"], actor=None)
    legal = make_collection("Legal", groups=["Legal"], managers=[admin])
    employee = make_user("employee", groups=["Legal"])
    auditor = make_user("auditor")
    people.set_roles(auditor, ["auditor"], actor=None)
    document = make_document(legal, "a.txt", b"Legal words")
    conversation = Conversation.objects.create(user=employee, title="Mine")
    record = QueryRecord.objects.create(
        user_ref=employee.pk, username="employee", conversation_ref=conversation.pk, question="Q?"
    )
    pages.store(document.pk, [Page(1, "Legal words")])  # as its ingestion would
    return {
        "users": {
            "employee": employee,
            "collection admin": admin,
            "auditor": auditor,
            "deactivated": make_user("gone", groups=["Legal"]),
            "superuser": make_user("root", is_superuser=True, is_staff=True),
        },
        "legal": legal,
        "document": document,
        "conversation": conversation,
        "record": record,
        "token": AccessToken.objects.create(
            user=employee, name="script", digest="0" * 64, expires_at=record.created_at
        ),
        "answer": Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content="This [1].",
            query=record,
            sources=[SOURCE | {"document_id": document.pk}],
        ),
        # A registered model (assistant/registry.py).
        "endpoint": ModelEndpoint.objects.create(
            name="large", base_url="http://large:8000/v1", model="large", location="on_premises"
        ),
        # A batch job of the collection admin, run once (assistant/batch).
        "run": BatchRun.objects.create(
            job=BatchJob.objects.create(name="Sort", owner=admin, kind="summarise"),
            kind="summarise",
        ),
    }


def url_for(route: str, world: dict) -> str:
    args: dict[str, list] = {
        "chat:conversation": [world["conversation"].pk],
        "chat:ask": [world["conversation"].pk],
        "chat:rename": [world["conversation"].pk],
        "chat:delete": [world["conversation"].pk],
        "chat:scope": [world["conversation"].pk],
        "chat:model": [world["conversation"].pk],
        "models:edit": [world["endpoint"].pk],
        "chat:pin": [world["conversation"].pk],
        "chat:feedback": [world["conversation"].pk, world["answer"].pk],
        "chat:source": [world["answer"].pk, 1],
        "chat:stop": [world["record"].pk],
        "chat:copied": [world["record"].pk],
        "chat:regenerate": [world["conversation"].pk],
        "chat:edit": [world["conversation"].pk],
        "ingestion:collection": [world["legal"].pk],
        "ingestion:collection_access": [world["legal"].pk],
        "ingestion:upload": [world["legal"].pk],
        "ingestion:collection_reingest": [world["legal"].pk],
        "ingestion:collection_clear": [world["legal"].pk],
        "ingestion:collection_starters": [world["legal"].pk],
        "ingestion:document_file": [world["document"].pk],
        "ingestion:document_page": [world["document"].pk, 1],
        "ingestion:reingest": [world["document"].pk],
        "ingestion:document_delete": [world["document"].pk],
        "people:person": [world["users"]["employee"].pk],
        "audit:record": [world["record"].pk],
        "audit:document": [world["document"].pk],
        "audit:export": ["csv"],
        "tokens:revoke": [world["token"].pk],
        "api:model": ["enclave"],
        **{f"batch:{name}": [world["run"].job_id] for name in ("job", "edit", "preview", "run")},
        **{
            f"batch:{name}": [world["run"].pk]
            for name in ("run_detail", "pause", "resume", "cancel", "compare")
        },
        "batch:export": [world["run"].pk, "csv"],
    }
    return reverse(route, args=args.get(route, []))


DATA = {
    "chat:ask_new": {"question": "What is this?"},
    "chat:ask": {"question": "What is this?"},
    "chat:rename": {"title": "New title"},
    "chat:feedback": {"rating": "up"},
    "chat:edit": {"question": "What is this?"},
    "ingestion:collection_create": {"name": "Another"},
    "people:group_create": {"name": "Finance"},
    "tokens:create": {"name": "script", "days": "30"},
    "set_language": {"language": "en"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX))
def test_each_role_gets_what_the_matrix_says(world, fake_llm, route: str, role: str) -> None:
    """Reliability #5, #7: every route x every role (deactivated included) as documented."""
    method, expected = MATRIX[route]
    client = Client()
    if role != "anonymous":
        user = world["users"][role]
        client.force_login(user)
        if role == "deactivated":
            user.is_active = False
            user.save()
    call = client.get if method == "GET" else client.post
    response = call(url_for(route, world), DATA.get(route, {}))
    assert response.status_code == expected[role], (route, role, response.status_code)
    if expected[role] == 302 and role in ("anonymous", "deactivated") and route.count(":"):
        assert response.url.startswith(reverse("login"))
