"""Single sign-on with OpenID Connect: a provider's user becomes the Enclave user of the same
username, and their groups follow the provider's groups claim on every sign-in."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from assistant import people


def username_from(claims: dict) -> str:
    return str(claims.get("preferred_username") or claims.get("email") or "")


def sync_groups(user: User, claims: dict) -> None:
    """Membership becomes exactly the claimed groups that exist here (created first when
    OIDC_CREATE_GROUPS is on). Roles are groups too, but only Enclave's own pages grant them:
    a claim can neither add nor remove a role."""
    names = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    names = [names] if isinstance(names, str) else [n for n in names if isinstance(n, str)]
    names = [n for n in names if n not in people.role_group_names()]
    if settings.OIDC_CREATE_GROUPS:
        for name in names:
            Group.objects.get_or_create(name=name)
    people.set_memberships(user, Group.objects.filter(name__in=names), actor=None)


class GroupSyncBackend(OIDCAuthenticationBackend):
    def authenticate(self, request: Any, **kwargs: Any) -> User | None:
        if "password" in kwargs:  # the password form, even with ?code= in its URL, is not SSO
            return None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token: str, **kwargs: Any) -> dict:
        # The library leaves the audience unchecked: refuse tokens issued to another client.
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud") or []
        if self.OIDC_RP_CLIENT_ID not in ([audience] if isinstance(audience, str) else audience):
            raise SuspiciousOperation("The ID token was issued to another client.")
        return payload

    def get_userinfo(self, access_token: str, id_token: str, payload: dict) -> dict:
        # Some providers put the groups in the ID token only: read both, userinfo wins.
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def verify_claims(self, claims: dict) -> bool:
        return bool(username_from(claims))

    def filter_users_by_claims(self, claims: dict) -> QuerySet[User]:
        return User.objects.filter(username=username_from(claims))

    def create_user(self, claims: dict) -> User:
        user = User.objects.create_user(username_from(claims), email=claims.get("email", ""))
        sync_groups(user, claims)
        return user

    def update_user(self, user: User, claims: dict) -> User:
        sync_groups(user, claims)
        return user
