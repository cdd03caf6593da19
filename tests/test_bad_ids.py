"""Ids and numbers from the client that are not plain ASCII numbers in range give 400 or 404,
never a 500. "²" passes str.isdigit() but int() refuses it; a huge number overflows a column."""

from urllib.parse import quote

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.factories import make_auditor, make_document, make_group, make_user

pytestmark = pytest.mark.embedded

BAD = ["²", "abc", "-1", "9" * 30]
PLACEHOLDER = 987654321


def with_bad(name: str, value: str, *args: int) -> str:
    """The URL with its last id replaced by the bad value (no converter would build it)."""
    url = reverse(name, args=[*args, PLACEHOLDER])
    return url.replace(str(PLACEHOLDER), quote(value))


@pytest.mark.parametrize("value", BAD)
def test_a_bad_id_in_the_path_is_a_404(people, value: str) -> None:
    document = make_document(people.legal, "a.txt", b"Lunch is at noon.")
    admin = login(make_user("admin", is_superuser=True))
    for name, args in [
        ("ingestion:collection", []),
        ("ingestion:document_file", []),
        ("ingestion:document_page", [document.pk]),
        ("chat:conversation", []),
        ("people:person", []),
        ("audit:record", []),
    ]:
        assert admin.get(with_bad(name, value, *args)).status_code == 404, (name, value)
    url = reverse("ingestion:document_page", args=[PLACEHOLDER, 1])
    assert admin.get(url.replace(str(PLACEHOLDER), quote(value))).status_code == 404
    assert admin.post(with_bad("chat:ask", value), {"question": "Hi?"}).status_code == 404


@pytest.mark.parametrize("value", BAD)
def test_a_bad_chunk_number_is_a_400(people, value: str) -> None:
    document = make_document(people.legal, "a.txt", b"Lunch is at noon.")
    url = reverse("ingestion:document_page", args=[document.pk, 1])
    assert login(people.teammate).get(url, {"chunk": value}).status_code == 400
    assert login(people.outsider).get(url, {"chunk": value}).status_code == 404


@pytest.mark.parametrize("value", BAD)
def test_bad_ids_in_a_form_are_a_400_and_change_nothing(people, value: str) -> None:
    admin = login(make_user("admin", is_superuser=True))
    legal_group = make_group("Legal")
    response = admin.post(
        reverse("ingestion:collection_create"), {"name": "New", "groups": [legal_group.pk, value]}
    )
    assert response.status_code == 400
    access = reverse("ingestion:collection_access", args=[people.legal.pk])
    for field in ("groups", "managers"):
        response = admin.post(access, {"groups": [legal_group.pk], "managers": [people.owner.pk],
                                       field: value})  # fmt: skip
        assert response.status_code == 400, field
    person = reverse("people:person", args=[people.teammate.pk])
    assert admin.post(person, {"groups": value, "active": "on"}).status_code == 400
    assert list(people.teammate.groups.values_list("name", flat=True)) == ["Legal"]
    assert list(people.legal.managers.all()) == [people.owner]
    # The outsider learns nothing from a bad form: still the 404 of a collection they cannot see.
    outsider = login(people.outsider)
    assert outsider.post(access, {"groups": value, "managers": value}).status_code == 404


@pytest.mark.parametrize("value", [*BAD, "9" * 12])  # the last fits int64 but not the column
def test_a_bad_retention_is_refused_with_a_message(people, value: str) -> None:
    owner = login(people.owner)
    url = reverse("ingestion:collection_access", args=[people.legal.pk])
    response = owner.post(
        url, {"managers": [people.owner.pk], "retention_days": value}, follow=True
    )
    assert response.status_code == 200
    assert "Retention must be" in response.content.decode()
    people.legal.refresh_from_db()
    assert people.legal.retention_days is None


@pytest.mark.parametrize("value", BAD)
def test_a_bad_id_in_an_audit_filter_is_refused(db, value: str) -> None:
    auditor = login(make_auditor())
    for field in ("collection", "document"):
        response = auditor.get(reverse("audit:index"), {field: value}, follow=True)
        assert response.status_code == 200 and "must be a number" in response.content.decode()
        export = auditor.get(reverse("audit:export", args=["csv"]), {field: value})
        assert export.status_code == 400
    assert auditor.get(reverse("audit:index"), {"page": value}).status_code == 200
    assert auditor.get(reverse("audit:events"), {"page": value}).status_code == 200
    employee = login(make_user("employee"))
    assert employee.get(reverse("audit:index"), {"document": value}).status_code == 403
