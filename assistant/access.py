"""The only gatekeeper: who may see or manage what. Every view and every retrieval asks here,
and every answer comes from the database at the time of the request."""

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.auth.models import User as DjangoUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase

from assistant import audit, people
from assistant.models import Conversation
from ingestion.models import Collection, Document

User = DjangoUser | AnonymousUser
T = TypeVar("T", bound=Model)
View = Callable[..., HttpResponseBase]


class AuthedRequest(HttpRequest):
    """What views behind @login_required receive."""

    user: DjangoUser


def collections_visible_to(user: User) -> QuerySet[Collection]:
    """Collections the user may read: granted to one of their groups (or managed by them)."""
    if not user.is_authenticated or not user.is_active:
        return Collection.objects.none()
    if user.is_superuser:
        return Collection.objects.all()
    return (
        Collection.objects.filter(groups__user=user) | Collection.objects.filter(managers=user)
    ).distinct()


def collections_managed_by(user: User) -> QuerySet[Collection]:
    if not user.is_authenticated or not user.is_active:
        return Collection.objects.none()
    if user.is_superuser:
        return Collection.objects.all()
    return Collection.objects.filter(managers=user)


def scope_ids(user: User) -> list[int]:
    return list(collections_visible_to(user).order_by("id").values_list("id", flat=True))


def can_create_collections(user: User) -> bool:
    return user.is_active and user.has_perm("ingestion.add_collection")


def grantable_groups() -> list[Group]:
    """Groups a collection can be granted to: every group but the role groups."""
    return people.plain_groups()


def can_manage_people(user: User) -> bool:
    return user.is_active and user.has_perm("auth.change_user")


def can_audit(user: User) -> bool:
    return user.is_active and user.has_perm("assistant.view_queryrecord")


def _visible_or_404(user: User, visible: QuerySet[T], pk: int) -> T:
    """The object if the user may see it. Otherwise a 404, the same whether it exists or not,
    and an attempt on an object that exists is recorded as a denied access."""
    found = visible.filter(pk=pk).first()
    if found is not None:
        return found
    target = visible.model._default_manager.filter(pk=pk).first()
    if target is not None:
        audit.record(audit.Action.ACCESS_DENIED, user, target)
    raise Http404


def readable_collection(user: User, collection_id: int) -> Collection:
    return _visible_or_404(user, collections_visible_to(user), collection_id)


def managed_collection(user: User, collection_id: int) -> Collection:
    return _visible_or_404(user, collections_managed_by(user), collection_id)


def _documents() -> QuerySet[Document]:
    """Documents that exist for users: one being deleted is gone at once."""
    return Document.objects.exclude(status=Document.Status.DELETING)


def readable_document(user: User, document_id: int) -> Document:
    visible = _documents().filter(collection__in=collections_visible_to(user))
    return _visible_or_404(user, visible, document_id)


def managed_document(user: User, document_id: int) -> Document:
    visible = _documents().filter(collection__in=collections_managed_by(user))
    return _visible_or_404(user, visible, document_id)


def own_conversation(user: User, conversation_id: int) -> Conversation:
    """Conversations are private to their owner: anyone else gets a 404, not a 403."""
    if not user.is_authenticated:
        raise Http404
    return _visible_or_404(user, Conversation.objects.filter(user=user), conversation_id)


def visible_sources(user: User, sources: list[dict]) -> list[dict]:
    """Re-authorise stored citations at view time: a revoked document's passage is withheld."""
    allowed = set(
        _documents()
        .filter(
            pk__in=[s["document_id"] for s in sources],
            collection__in=collections_visible_to(user),
        )
        .values_list("pk", flat=True)
    )
    return [s if s["document_id"] in allowed else {"n": s["n"], "withheld": True} for s in sources]


def requires(allowed: Callable[[DjangoUser], bool]) -> Callable[[View], View]:
    """A view for signed-in users who pass `allowed`: others signed in get a 403."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: AuthedRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            if not allowed(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
