"""Personal access tokens for the API: made on the user's own page, shown once, kept as a hash.
A token reads at most what its owner reads now (its collections narrowed at every request), and
stops at once when revoked, expired, or when its owner is deactivated."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from assistant import access, audit, params, scope
from assistant.access import AuthedRequest
from assistant.models import AccessToken
from ingestion.models import Collection

PREFIX = "enc_"
SHOWN_CHARS = 12  # "enc_" and 8 characters of the secret: enough to tell tokens apart
EXPIRY_DAYS = (7, 30, 90, 365)
MAX_NAME_CHARS = 100


def digest(secret: str) -> str:
    # A plain sha256 is enough: the secret is 256 random bits, not a password to be guessed.
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    user: User, name: str, days: int, collections: list[int] | None, request: HttpRequest
) -> tuple[AccessToken, str]:
    """A new token and its secret, which is not kept anywhere and cannot be shown again."""
    secret = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = AccessToken.objects.create(
            user=user,
            name=name,
            prefix=secret[:SHOWN_CHARS],
            digest=digest(secret),
            scope=collections,
            expires_at=timezone.now() + timedelta(days=days),
        )
        detail = {
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat(),
            "scope": None if collections is None else scope.named(readable(token)),
        }
        audit.record(audit.Action.TOKEN_CREATED, user, token, detail=detail, request=request)
    return token, secret


def revoke(actor: User, token: AccessToken, request: HttpRequest) -> None:
    with transaction.atomic():
        # Conditional: two revocations at once make one event.
        if AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            detail = {"owner": token.user.get_username(), "prefix": token.prefix}
            audit.record(audit.Action.TOKEN_REVOKED, actor, token, detail=detail, request=request)


class Refused(Exception):
    """A request the token cannot make: the message is safe to show to its sender."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def authenticate(request: HttpRequest) -> AccessToken:
    """The token of an `Authorization: Bearer enc_…` header, checked against the database now;
    the first use is an audit event. Anything else is Refused."""
    kind, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if kind.lower() != "bearer" or not secret:
        raise Refused(
            401,
            "missing_api_key",
            gettext("Send a personal access token: Authorization: Bearer enc_…"),
        )
    token = AccessToken.objects.select_related("user").filter(digest=digest(secret)).first()
    now = timezone.now()
    if token is None:
        raise Refused(401, "invalid_api_key", gettext("This token is not valid."))
    if token.revoked_at is not None:
        raise Refused(401, "token_revoked", gettext("This token was revoked."))
    if token.expires_at <= now:
        raise Refused(401, "token_expired", gettext("This token has expired."))
    if not token.user.is_active:
        raise Refused(403, "account_deactivated", gettext("The token's owner is deactivated."))
    with transaction.atomic():
        first = AccessToken.objects.filter(pk=token.pk, last_used_at__isnull=True).update(
            last_used_at=now
        )
        if first:
            audit.record(audit.Action.TOKEN_FIRST_USED, token.user, token, request=request)
        else:
            AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def readable(token: AccessToken) -> list[Collection]:
    """The collections the token searches: its own pick, narrowed to what its owner reads now."""
    collections = access.collections_visible_to(token.user).order_by("id")
    if token.scope is not None:
        collections = collections.filter(pk__in=token.scope)
    return list(collections)


# --- the tokens page: the user's own tokens; a superuser sees and revokes everyone's -------


def visible_to(user: User) -> QuerySet[AccessToken]:
    tokens = AccessToken.objects.select_related("user")
    return tokens if user.is_superuser else tokens.filter(user=user)


def page(request: AuthedRequest, status: int = 200, **context: object) -> HttpResponse:
    context = {
        "tokens": visible_to(request.user),
        "collections": access.collections_visible_to(request.user).order_by("name"),
        "expiry_days": EXPIRY_DAYS,
        "now": timezone.now(),
        **context,
    }
    return render(request, "assistant/tokens.html", context, status=status)


@login_required
@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    return page(request)


@login_required
@require_POST
def token_create(request: AuthedRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()[:MAX_NAME_CHARS]
    days = request.POST.get("days", "")
    if not name:
        return page(request, 400, error=gettext("Give the token a name."))
    if not params.is_number(days) or int(days) not in EXPIRY_DAYS:
        return page(request, 400, error=gettext("Choose when the token expires."))
    # Only collections the user reads now; none ticked: all they can read at each request.
    picked = scope.chosen(request.user, request.POST.getlist("scope"), request)
    token, secret = create(request.user, name, int(days), picked, request)
    return page(request, 201, created=token, secret=secret)


@login_required
@require_POST
def token_revoke(request: AuthedRequest, token_id: int) -> HttpResponse:
    token = visible_to(request.user).filter(pk=token_id).first()
    if token is None:
        # Someone else's token is a 404, as if it did not exist; an attempt is recorded.
        target = AccessToken.objects.filter(pk=token_id).first()
        if target is not None:
            audit.record(audit.Action.ACCESS_DENIED, request.user, target, request=request)
        raise Http404
    revoke(request.user, token, request)
    return redirect("tokens:index")
