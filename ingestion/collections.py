"""Creating collections and changing who may read or manage them; audited."""

from collections.abc import Iterable

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from assistant import audit, people
from ingestion.models import Collection

MAX_RETENTION_DAYS = 100 * 366  # also keeps the number inside the column's integer


class CollectionError(ValueError):
    pass


class RoleGranted(CollectionError):
    """A role group was sent as readers: the form never offers one, so the request is bad."""


def readers(groups: Iterable[Group]) -> list[Group]:
    """The groups, unless one is a role group: a role says what its members may do, and
    granting it a collection would let every auditor or collection admin read it."""
    groups = list(groups)
    roles = sorted(g.name for g in groups if g.name in people.role_group_names())
    if roles:
        raise RoleGranted(
            gettext(
                "%(roles)s is a role, not a group of readers: it cannot be granted a collection."
            )
            % {"roles": ", ".join(roles)}
        )
    return groups


def create(name: str, description: str, groups: Iterable[Group], actor: User) -> Collection:
    name = name.strip()[:200]
    if not name:
        raise CollectionError(gettext("A collection needs a name."))
    try:
        with transaction.atomic():
            collection = Collection.objects.create(name=name, description=description.strip())
            collection.managers.add(actor)
            collection.groups.set(readers(groups))
            audit.record(
                audit.Action.COLLECTION_CREATED,
                actor,
                collection,
                detail={"groups": sorted(g.name for g in collection.groups.all())},
            )
    except IntegrityError:
        raise CollectionError(
            gettext("A collection named “%(name)s” already exists.") % {"name": name}
        ) from None
    return collection


def snapshot(collection: Collection) -> dict[str, list[str]]:
    return {
        "groups": sorted(collection.groups.values_list("name", flat=True)),
        "managers": sorted(collection.managers.values_list("username", flat=True)),
    }


@transaction.atomic
def set_grants(
    collection: Collection, groups: Iterable[Group], managers: Iterable[User], actor: User
) -> None:
    managers = list(managers)
    if not managers:
        raise CollectionError(gettext("A collection needs at least one manager."))
    before = snapshot(collection)
    collection.groups.set(readers(groups))
    collection.managers.set(managers)
    after = snapshot(collection)
    if before != after:
        audit.record(
            audit.Action.GRANTS_CHANGED,
            actor,
            collection,
            detail={"before": before, "after": after},
        )


@transaction.atomic
def set_retention(
    collection: Collection, retention_days: int | None, legal_hold: bool, actor: User
) -> None:
    if retention_days is not None and retention_days > MAX_RETENTION_DAYS:
        raise CollectionError(
            gettext("Retention must be at most %(days)d days, or empty.")
            % {"days": MAX_RETENTION_DAYS}
        )
    # Locked: a running purge's batch reads the policy under the same lock (trail.purge).
    current = Collection.objects.select_for_update().get(pk=collection.pk)
    before = {"retention_days": current.retention_days, "legal_hold": current.legal_hold}
    after = {"retention_days": retention_days, "legal_hold": legal_hold}
    if before == after:
        return
    collection.retention_days, collection.legal_hold = retention_days, legal_hold
    collection.save(update_fields=["retention_days", "legal_hold"])
    audit.record(
        audit.Action.RETENTION_CHANGED, actor, collection, detail={"before": before, "after": after}
    )


@transaction.atomic
def set_sensitivity(collection: Collection, sensitivity: str, actor: User) -> None:
    """Which models may read it. Made restricted, it is withdrawn from every external model's
    approvals in the same change: an approval must never outlive the collection's release."""
    if sensitivity not in Collection.Sensitivity.values:
        raise CollectionError(gettext("Choose restricted or internal."))
    current = Collection.objects.select_for_update().get(pk=collection.pk)
    if current.sensitivity == sensitivity:
        return
    detail: dict = {"before": current.sensitivity, "after": sensitivity}
    if sensitivity == Collection.Sensitivity.RESTRICTED:
        approved = collection.approved_models.all()
        detail["approvals_dropped"] = sorted(approved.values_list("name", flat=True))
        collection.approved_models.clear()
    collection.sensitivity = sensitivity
    collection.save(update_fields=["sensitivity"])
    audit.record(audit.Action.SENSITIVITY_CHANGED, actor, collection, detail=detail)
