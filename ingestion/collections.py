"""Creating collections and changing who may read or manage them; audited."""

from collections.abc import Iterable

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction

from assistant import audit
from ingestion.models import Collection

MAX_RETENTION_DAYS = 100 * 366  # also keeps the number inside the column's integer


class CollectionError(ValueError):
    pass


def create(name: str, description: str, groups: Iterable[Group], actor: User) -> Collection:
    name = name.strip()[:200]
    if not name:
        raise CollectionError("A collection needs a name.")
    try:
        with transaction.atomic():
            collection = Collection.objects.create(name=name, description=description.strip())
            collection.managers.add(actor)
            collection.groups.set(list(groups))
            audit.record(
                audit.Action.COLLECTION_CREATED,
                actor,
                collection,
                detail={"groups": sorted(g.name for g in collection.groups.all())},
            )
    except IntegrityError:
        raise CollectionError(f"A collection named “{name}” already exists.") from None
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
        raise CollectionError("A collection needs at least one manager.")
    before = snapshot(collection)
    collection.groups.set(list(groups))
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
        raise CollectionError(f"Retention must be at most {MAX_RETENTION_DAYS} days, or empty.")
    before = {"retention_days": collection.retention_days, "legal_hold": collection.legal_hold}
    after = {"retention_days": retention_days, "legal_hold": legal_hold}
    if before == after:
        return
    collection.retention_days, collection.legal_hold = retention_days, legal_hold
    collection.save(update_fields=["retention_days", "legal_hold"])
    audit.record(
        audit.Action.RETENTION_CHANGED, actor, collection, detail={"before": before, "after": after}
    )
