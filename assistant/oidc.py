"""Single sign-on with OpenID Connect. A provider's account is known by its issuer and subject
(the signed ID token's `iss` and `sub`), bound to one Enclave user at its first sign-in; the
username only names a new account, so renaming a user at the provider changes nothing here.
Groups follow the provider's groups claim on every sign-in."""

from typing import Any, NoReturn

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import Group, User
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from assistant import audit, people
from assistant.models import SsoIdentity


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


def bindable(user: User) -> bool:
    """May a provider account seen for the first time take over this existing account? Only an
    SSO-only one made before identities were stored; anything else needs `link_sso`."""
    return not (user.has_usable_password() or user.is_superuser or user.sso_identities.exists())


@transaction.atomic
def link(user: User, issuer: str, subject: str, *, by: str) -> SsoIdentity:
    identity = SsoIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    detail = {"issuer": issuer, "subject": subject, "by": by}
    audit.record(audit.Action.SSO_LINKED, None, user, detail=detail)
    return identity


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
        userinfo = super().get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core 5.3.2: userinfo about another subject must not be used.
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo subject differs from the ID token's.")
        # Some providers put the groups in the ID token only: read both, userinfo wins, but
        # the issuer is the signed ID token's.
        return {**payload, **userinfo, "iss": payload.get("iss")}

    def verify_claims(self, claims: dict) -> bool:
        return bool(claims.get("iss") and claims.get("sub") and username_from(claims))

    def filter_users_by_claims(self, claims: dict) -> QuerySet[User]:
        return User.objects.filter(
            sso_identities__issuer=claims["iss"], sso_identities__subject=str(claims["sub"])
        )

    def create_user(self, claims: dict) -> User:
        issuer, subject, username = claims["iss"], str(claims["sub"]), username_from(claims)
        if (linked := self.filter_users_by_claims(claims).first()) is not None:
            return self.update_user(linked, claims)  # another tab's first sign-in just linked it
        user = User.objects.filter(username=username).first()
        if user is not None and not bindable(user):
            self.refuse(
                gettext(
                    "An account named “%(name)s” already exists and is not linked to your "
                    "single sign-on account. Ask an administrator to link it."
                )
                % {"name": username},
                f"{subject} at {issuer} asked for the existing account {username!r}; if it is "
                f"theirs: manage.py link_sso {username} {issuer} {subject}",
            )
        try:
            with transaction.atomic():
                if user is None:
                    user = User.objects.create_user(username, email=claims.get("email", ""))
                link(user, issuer, subject, by="first sign-in")
                sync_groups(user, claims)
        except IntegrityError:
            # The same identity's first sign-in in another tab got there first: use its work.
            linked = self.filter_users_by_claims(claims).first()
            if linked is None:
                raise
            return self.update_user(linked, claims)
        return user

    def update_user(self, user: User, claims: dict) -> User:
        sync_groups(user, claims)
        return user

    def get_user(self, user_id: int) -> User | None:
        # The library's loads a deactivated user too: a session signed in by SSO would outlive
        # the deactivation that ModelBackend's sessions do not.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def refuse(self, message: str, log: str) -> NoReturn:
        """Fail the sign-in: the library logs `log` and sends the user to the sign-in page,
        which shows `message`."""
        messages.error(self.request, message)
        raise SuspiciousOperation(log)
