"""The tokens page: a user makes, sees and revokes their own tokens; a superuser sees and revokes
anyone's; nobody else can touch them."""

import pytest
from django.test import Client
from django.urls import reverse

from assistant.models import AccessToken, AuditEvent
from tests.conftest import login
from tests.factories import make_collection, make_user
from tests.test_api import make_token

pytestmark = pytest.mark.embedded


def test_a_token_is_shown_once_with_its_expiry_and_scope(people) -> None:
    secret = make_token(people.owner, days=90, scope=[people.legal])
    token = AccessToken.objects.get()
    assert secret.startswith("enc_") and token.prefix == secret[:12]
    assert token.scope == [people.legal.pk]
    assert 89 <= (token.expires_at - token.created_at).days <= 90
    page = login(people.owner).get(reverse("tokens:index"))
    assert page.status_code == 200
    html = page.content.decode()
    assert token.prefix in html and secret not in html and "1 collection" in html


def test_a_token_cannot_be_scoped_to_a_collection_its_owner_cannot_read(people) -> None:
    make_token(people.teammate, scope=[people.legal, people.sales])
    assert AccessToken.objects.get().scope == [people.legal.pk]
    denied = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert denied.detail["collections"] == [people.sales.pk]


@pytest.mark.parametrize(
    "form",
    [{"name": "", "days": "30"}, {"name": "x", "days": "31"}, {"name": "x", "days": "²"}],
)
def test_a_token_needs_a_name_and_a_listed_expiry(people, form) -> None:
    response = login(people.owner).post(reverse("tokens:create"), form)
    assert response.status_code == 400
    assert not AccessToken.objects.exists()


def test_users_see_only_their_own_tokens(people) -> None:
    make_token(people.owner)
    page = login(people.outsider).get(reverse("tokens:index")).content.decode()
    assert AccessToken.objects.get().prefix not in page


def test_another_user_cannot_revoke_my_token(people) -> None:
    make_token(people.owner)
    token = AccessToken.objects.get()
    response = login(people.outsider).post(reverse("tokens:revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    denied = AuditEvent.objects.get(action=AuditEvent.Action.ACCESS_DENIED)
    assert (denied.actor_username, denied.target_id) == ("outsider", str(token.pk))
    # Even a collection manager (the owner manages Legal) cannot revoke a reader's token.
    make_token(people.teammate)
    theirs = AccessToken.objects.get(user=people.teammate)
    assert login(people.owner).post(reverse("tokens:revoke", args=[theirs.pk])).status_code == 404


def test_a_superuser_sees_and_revokes_anyones_token(people) -> None:
    make_token(people.teammate)
    token = AccessToken.objects.get()
    admin = login(make_user("admin", is_superuser=True))
    page = admin.get(reverse("tokens:index")).content.decode()
    assert token.prefix in page and "teammate" in page
    assert admin.post(reverse("tokens:revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    revoked = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_REVOKED)
    assert (revoked.actor_username, revoked.detail["owner"]) == ("admin", "teammate")


def test_the_tokens_page_needs_a_sign_in_and_a_post_to_change(people) -> None:
    assert login(people.owner).get(reverse("tokens:create")).status_code == 405
    anonymous = Client()
    assert anonymous.get(reverse("tokens:index")).status_code == 302
    assert anonymous.post(reverse("tokens:create"), {"name": "x", "days": "7"}).status_code == 302
    assert not AccessToken.objects.exists()


def test_the_tokens_page_lists_only_collections_the_user_reads(people) -> None:
    make_collection("Board minutes", groups=["Board"])
    html = login(people.teammate).get(reverse("tokens:index")).content.decode()
    assert "Legal" in html and "Sales" not in html and "Board minutes" not in html
