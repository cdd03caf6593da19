"""What a user administrator who is not a superuser (holds only auth.change_user) cannot do on
the people pages, and the person page's save being all or nothing."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from assistant import access
from assistant import people as people_actions
from assistant.models import AuditEvent
from tests.conftest import login
from tests.factories import make_group, make_user

pytestmark = pytest.mark.embedded

Action = AuditEvent.Action


def make_user_admin(username: str = "useradmin") -> User:
    user = make_user(username)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="auth", codename="change_user")
    )
    return user


class FormData(HTMLParser):
    """What a browser submits from the page's form: checked boxes and hidden fields, not the
    disabled ones."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag != "input" or "disabled" in a or not a.get("name"):
            return
        if a.get("type") == "hidden" or (a.get("type") == "checkbox" and "checked" in a):
            self.data.setdefault(str(a["name"]), []).append(a.get("value") or "on")


def form_data(html: str) -> dict[str, list[str]]:
    parser = FormData()
    parser.feed(html)
    return parser.data


def test_a_user_admin_cannot_deactivate_a_superuser(db) -> None:
    root = make_user("root", is_superuser=True)
    page = login(make_user_admin()).post(reverse("people:person", args=[root.pk]), {}, follow=True)
    assert "Only a superuser can deactivate or reactivate a superuser." in page.content.decode()
    root.refresh_from_db()
    assert root.is_active
    assert not AuditEvent.objects.filter(action=Action.USER_DEACTIVATED).exists()


def test_a_user_admin_cannot_reactivate_a_superuser(db) -> None:
    root = make_user("root", is_superuser=True, is_active=False)
    url = reverse("people:person", args=[root.pk])
    login(make_user_admin()).post(url, {"active": "on"})
    root.refresh_from_db()
    assert not root.is_active


def test_a_user_admin_cannot_give_themselves_roles(db) -> None:
    admin = make_user_admin()
    url = reverse("people:person", args=[admin.pk])
    data = {"roles": ["auditor", "collection_admin"], "active": "on"}
    page = login(admin).post(url, data, follow=True)
    assert "You cannot change your own roles." in page.content.decode()
    admin = User.objects.get(pk=admin.pk)  # fresh permission cache
    assert not access.can_audit(admin) and not access.can_create_collections(admin)
    assert not AuditEvent.objects.filter(action=Action.ROLES_CHANGED).exists()


def test_a_user_admin_cannot_join_groups_themselves(db) -> None:
    admin = make_user_admin()
    finance = make_group("Finance")  # a group is read access to its collections
    url = reverse("people:person", args=[admin.pk])
    page = login(admin).post(url, {"groups": [finance.pk], "active": "on"}, follow=True)
    assert "You cannot change your own groups." in page.content.decode()
    assert not admin.groups.exists()
    assert not AuditEvent.objects.filter(action=Action.MEMBERSHIP_CHANGED).exists()


def test_a_user_admin_still_manages_other_users(db) -> None:
    bea = make_user("bea")
    login(make_user_admin()).post(reverse("people:person", args=[bea.pk]), {"roles": ["auditor"]})
    bea.refresh_from_db()
    assert people_actions.roles_of(bea) == {"auditor"} and not bea.is_active


def test_a_superuser_still_deactivates_a_superuser(db) -> None:
    other = make_user("other", is_superuser=True)
    login(make_user("root", is_superuser=True)).post(reverse("people:person", args=[other.pk]), {})
    other.refresh_from_db()
    assert not other.is_active


def test_the_page_locks_what_a_user_admin_cannot_change_and_still_saves(db) -> None:
    finance = make_group("Finance")
    root = make_user("root", is_superuser=True)
    admin = make_user_admin()
    client = login(admin)
    # A superuser's page: the Active box is locked, the groups still save.
    url = reverse("people:person", args=[root.pk])
    html = client.get(url).content.decode()
    assert 'name="active" checked disabled' in html
    data = form_data(html) | {"groups": [str(finance.pk)]}
    page = client.post(url, data, follow=True).content.decode()
    assert "Saved root." in page
    root.refresh_from_db()
    assert root.is_active and list(root.groups.all()) == [finance]
    # Their own page: roles and groups are locked (and kept), the unchanged form still saves.
    admin.groups.add(people_actions.role_group("auditor"), finance)
    url = reverse("people:person", args=[admin.pk])
    html = client.get(url).content.decode()
    assert 'name="roles" value="auditor" checked disabled' in html
    assert 'name="roles" value="collection_admin" disabled' in html
    assert f'name="groups" value="{finance.pk}" checked disabled' in html
    page = client.post(url, form_data(html), follow=True)
    assert "Saved useradmin." in page.content.decode()
    assert people_actions.roles_of(admin) == {"auditor"}
    assert set(admin.groups.values_list("name", flat=True)) == {"Auditors", "Finance"}


def test_a_save_that_fails_at_its_last_step_changes_nothing(db) -> None:
    root = make_user("root", is_superuser=True)
    finance = make_group("Finance")
    # Groups and roles come first; deactivating yourself, the last step, is refused.
    url = reverse("people:person", args=[root.pk])
    page = login(root).post(url, {"groups": [finance.pk], "roles": ["auditor"]}, follow=True)
    assert "You cannot deactivate yourself." in page.content.decode()
    root.refresh_from_db()
    assert root.is_active and not root.groups.exists()
    changes = [Action.MEMBERSHIP_CHANGED, Action.ROLES_CHANGED, Action.USER_DEACTIVATED]
    assert not AuditEvent.objects.filter(action__in=changes).exists()


def test_a_plain_user_changes_nobody(people) -> None:
    url = reverse("people:person", args=[people.teammate.pk])
    response = login(people.outsider).post(url, {"roles": ["auditor"]})
    assert response.status_code == 403
    people.teammate.refresh_from_db()
    assert people.teammate.is_active and not people.teammate.groups.filter(name="Auditors")
