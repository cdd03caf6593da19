"""The collection page lists documents a page at a time; role groups never read collections."""

import uuid

import pytest
from django.urls import reverse

from assistant import people as people_actions
from assistant.models import AuditEvent
from ingestion.models import Collection, Document
from ingestion.views import DOCUMENTS_PER_PAGE
from tests.conftest import login
from tests.factories import make_document, make_group, make_user

pytestmark = pytest.mark.embedded


def make_documents(collection, count: int) -> list[Document]:
    made = [make_document(collection, f"doc-{n}.txt", f"Rule {n}.".encode()) for n in range(count)]
    Document.objects.update(status=Document.Status.READY)
    return made


def test_the_collection_page_lists_documents_a_page_at_a_time(people) -> None:
    made = make_documents(people.legal, DOCUMENTS_PER_PAGE + 1)
    url = reverse("ingestion:collection", args=[people.legal.pk])
    client = login(people.teammate)
    page = client.get(url).content.decode()
    assert page.count('<tr id="doc-') == DOCUMENTS_PER_PAGE
    assert f'id="doc-{made[-1].pk}"' in page and f'id="doc-{made[0].pk}"' not in page
    assert f"Page 1 of 2 ({DOCUMENTS_PER_PAGE + 1} documents)" in page
    assert f'href="{url}?page=2" hx-get="{url}?page=2" hx-target="#documents"' in page
    partial = client.get(url, {"page": 2}, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and partial.count('<tr id="doc-') == 1
    assert f'id="doc-{made[0].pk}"' in partial and f'href="{url}?page=1"' in partial
    assert client.get(url, {"page": "x"}).status_code == 200  # a bad page number: the first
    assert login(people.outsider).get(url, {"page": 2}).status_code == 404


def test_the_progress_bar_counts_the_whole_upload_across_pages(people) -> None:
    made = make_documents(people.legal, DOCUMENTS_PER_PAGE + 5)
    Document.objects.update(batch=uuid.uuid4())
    Document.objects.filter(pk=made[0].pk).update(status=Document.Status.QUEUED)
    url = reverse("ingestion:collection", args=[people.legal.pk])
    partial = login(people.owner).get(url, {"page": 2}, headers={"HX-Request": "true"})
    partial = partial.content.decode()
    total = DOCUMENTS_PER_PAGE + 5
    assert f'<progress max="{total}" value="{total - 1}">' in partial
    # It polls while work runs, and keeps showing the page the user is on.
    assert f'hx-get="{url}?page=2" hx-trigger="every 2s"' in partial


def test_role_groups_cannot_be_granted_a_collection(people) -> None:
    auditors = people_actions.role_group("auditor")
    admins = people_actions.role_group("collection_admin")
    legal_group = make_group("Legal")
    owner = login(people.owner)
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    for role in (auditors, admins):
        response = owner.post(
            url, {"groups": [legal_group.pk, role.pk], "managers": [people.owner.pk]}
        )
        assert response.status_code == 400
        assert f"{role.name} is a role, not a group of readers" in response.content.decode()
    assert list(people.legal.groups.all()) == [legal_group]
    root = login(make_user("root", is_superuser=True))
    response = root.post(
        reverse("ingestion:collection_create"), {"name": "New", "groups": [auditors.pk]}
    )
    assert response.status_code == 400 and "Auditors is a role" in response.content.decode()
    assert not Collection.objects.filter(name="New").exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.GRANTS_CHANGED).exists()
    # The outsider learns nothing: still the 404 of a collection they cannot manage.
    response = login(people.outsider).post(
        url, {"groups": [auditors.pk], "managers": [people.outsider.pk]}
    )
    assert response.status_code == 404
