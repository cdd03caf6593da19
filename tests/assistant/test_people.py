"""Managing groups, roles, grants and users in the app's own pages; every change audited;
revocation takes effect on the next request."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from assistant import access
from assistant import people as people_actions
from assistant.models import AuditEvent, BatchJob, Conversation
from ingestion import pipeline
from ingestion.models import Collection
from tests.conftest import login, read_events
from tests.factories import make_document, make_pdf, make_user

pytestmark = pytest.mark.embedded

Action = AuditEvent.Action


def superuser():
    return make_user("root", is_superuser=True, is_staff=True)


def test_a_superuser_creates_a_group_and_puts_a_user_in_it(db) -> None:
    root = superuser()
    bea = make_user("bea")
    client = login(root)
    client.post(reverse("people:group_create"), {"name": "Finance"})
    finance = Group.objects.get(name="Finance")
    client.post(reverse("people:person", args=[bea.pk]), {"groups": [finance.pk], "active": "on"})
    assert list(bea.groups.all()) == [finance]
    event = AuditEvent.objects.get(action=Action.MEMBERSHIP_CHANGED)
    assert (event.actor_username, event.target_label) == ("root", "bea")
    assert event.detail == {"before": [], "after": ["Finance"]}
    assert AuditEvent.objects.filter(action=Action.GROUP_CREATED, target_label="Finance").exists()


def test_duplicate_groups_are_refused_with_a_reason(db) -> None:
    client = login(superuser())
    client.post(reverse("people:group_create"), {"name": "Finance"})
    page = client.post(reverse("people:group_create"), {"name": "finance"}, follow=True)
    assert "already exists" in page.content.decode()
    assert Group.objects.filter(name__iexact="finance").count() == 1


def test_roles_are_granted_and_taken_on_the_person_page(db) -> None:
    bea = make_user("bea")
    client = login(superuser())
    url = reverse("people:person", args=[bea.pk])
    client.post(url, {"roles": ["auditor", "collection_admin"], "active": "on"})
    bea.refresh_from_db()
    assert access.can_audit(bea) and access.can_create_collections(bea)
    client.post(url, {"roles": ["auditor"], "active": "on"})
    bea = type(bea).objects.get(pk=bea.pk)  # fresh permission cache
    assert access.can_audit(bea) and not access.can_create_collections(bea)
    changes = AuditEvent.objects.filter(action=Action.ROLES_CHANGED).order_by("id")
    assert [e.detail["after"] for e in changes] == [["auditor", "collection_admin"], ["auditor"]]


def test_role_groups_cannot_be_granted_collections_or_joined_as_groups(db) -> None:
    people_actions.role_group("auditor")
    make_user("bea")
    page = login(superuser()).get(reverse("people:index")).content.decode()
    assert "Auditors" not in page.split("<h2>Groups</h2>")[1]
    assert "Auditors" not in [g.name for g in people_actions.plain_groups()]


def test_nobody_deactivates_themselves(db) -> None:
    root = superuser()
    page = login(root).post(reverse("people:person", args=[root.pk]), {}, follow=True)
    assert "cannot deactivate yourself" in page.content.decode()
    root.refresh_from_db()
    assert root.is_active


def test_deactivation_ends_sessions_on_the_next_request(people) -> None:
    """Reliability #7: the session cookie of a deactivated user is refused."""
    client = login(people.teammate)
    assert client.get(reverse("chat:index")).status_code == 200
    login(superuser()).post(reverse("people:person", args=[people.teammate.pk]), {})
    response = client.get(reverse("chat:index"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert AuditEvent.objects.filter(action=Action.USER_DEACTIVATED).count() == 1


def test_managers_change_who_reads_a_collection(people) -> None:
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    sales_group = Group.objects.get(name="Sales")
    client = login(people.owner)
    client.post(url, {"groups": [sales_group.pk], "managers": [people.owner.pk]})
    assert list(people.legal.groups.all()) == [sales_group]
    assert people.legal not in access.collections_visible_to(people.teammate)
    assert people.legal in access.collections_visible_to(people.outsider)
    event = AuditEvent.objects.get(action=Action.GRANTS_CHANGED)
    assert event.detail["before"]["groups"] == ["Legal"]
    assert event.detail["after"]["groups"] == ["Sales"]


def test_a_collection_keeps_at_least_one_manager(people) -> None:
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    page = login(people.owner).post(url, {"groups": []}, follow=True).content.decode()
    assert "at least one manager" in page
    assert list(people.legal.managers.all()) == [people.owner]


def test_creating_a_collection_is_audited(db) -> None:
    login(superuser()).post(reverse("ingestion:collection_create"), {"name": "Board"})
    board = Collection.objects.get(name="Board")
    event = AuditEvent.objects.get(action=Action.COLLECTION_CREATED)
    assert event.target_id == str(board.pk)


def test_revoking_a_grant_changes_answers_on_the_next_question(people, fake_llm) -> None:
    """Reliability #6: revoked with the session open, the next query has 0 hits."""
    document = make_document(people.legal, "r.pdf", make_pdf(["Refunds take 14 days."]))
    pipeline.ingest(document.pk)
    client = login(people.teammate)
    first = read_events(client.post(reverse("chat:ask_new"), {"question": "Refunds?"}))
    assert "Refunds take 14 days." in first[-1][1]["html"]
    conversation = Conversation.objects.get()
    people.legal.groups.clear()  # the grant is revoked while the conversation is open
    second = read_events(
        client.post(reverse("chat:ask", args=[conversation.pk]), {"question": "Refunds?"})
    )
    assert "Refunds take 14 days." not in str(second)
    assert "found nothing" in second[3][1]["text"]
    assert len(fake_llm.requests) == 1  # nothing in scope: the model was not even asked


def test_asking_for_an_object_outside_scope_is_recorded_as_denied(people) -> None:
    document = make_document(people.legal, "a.txt", b"x")
    response = login(people.outsider).get(reverse("ingestion:document_file", args=[document.pk]))
    assert response.status_code == 404
    event = AuditEvent.objects.get(action=Action.ACCESS_DENIED)
    assert (event.actor_username, event.target_type, event.target_id) == (
        "outsider",
        "ingestion.document",
        str(document.pk),
    )
    # A missing object is a 404 too, and nothing to record.
    login(people.outsider).get(reverse("ingestion:document_file", args=[999_999]))
    assert AuditEvent.objects.filter(action=Action.ACCESS_DENIED).count() == 1


def test_scope_fields_sent_with_a_question_are_ignored_and_recorded(people, fake_llm) -> None:
    """Reliability #3."""
    read_events(
        login(people.teammate).post(
            reverse("chat:ask_new"),
            {"question": "hi", "collection_ids": [people.sales.pk], "filter": "{}"},
        )
    )
    event = AuditEvent.objects.get(action=Action.ACCESS_DENIED)
    assert event.detail["parameters"] == ["collection_ids", "filter"]


def test_sign_in_and_out_are_audited(db, client) -> None:
    from tests.factories import PASSWORD

    make_user("dana")
    client.post(reverse("login"), {"username": "dana", "password": "wrong"})
    client.post(reverse("login"), {"username": "dana", "password": PASSWORD})
    client.post(reverse("logout"))
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [Action.LOGIN_FAILED, Action.LOGIN, Action.LOGOUT]
    failed = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert failed.detail == {"username": "dana"} and "wrong" not in str(failed.detail)


def test_a_user_admin_grants_and_takes_the_batch_jobs_role(people) -> None:
    """The role carries run_batch_jobs: jobs on every collection its holder reads, no other."""
    admin = make_user("useradmin")
    admin.user_permissions.add(Permission.objects.get(codename="change_user"))
    url = reverse("people:person", args=[people.teammate.pk])
    client = login(admin)
    assert 'name="roles" value="batch_jobs"' in client.get(url).content.decode()
    teammate = login(people.teammate)
    assert teammate.get(reverse("batch:index")).status_code == 403

    legal = Group.objects.get(name="Legal").pk  # the page posts their groups too
    client.post(url, {"groups": [legal], "roles": ["batch_jobs"], "active": "on"})
    form = {"name": "Sort", "kind": "classify", "multi": "single"}
    form |= {"label_name": ["Invoice", "Contract"], "label_description": ["", ""]}
    refused = teammate.post(reverse("batch:create"), form | {"collections": [people.sales.pk]})
    teammate.post(reverse("batch:create"), form | {"collections": [people.legal.pk]})
    job = BatchJob.objects.get()
    assert refused.status_code == 400 and job.owner == people.teammate
    assert list(job.collections.all()) == [people.legal]

    client.post(url, {"groups": [legal], "roles": [], "active": "on"})
    assert teammate.get(reverse("batch:index")).status_code == 403
    changes = AuditEvent.objects.filter(action=Action.ROLES_CHANGED).order_by("id")
    assert [e.detail["after"] for e in changes] == [["batch_jobs"], []]
