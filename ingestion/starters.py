"""Starter questions: a collection's managers write a few, an empty chat offers them to its
readers."""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext

from assistant import access, audit
from ingestion.models import Collection

MAX_STARTERS = 5
MAX_CHARS = 200
MAX_OFFERED = 6  # on one empty chat, over every collection the user reads


class StartersError(ValueError):
    pass


def parse(text: str) -> list[str]:
    """One question a line; blank lines are dropped. Too many or too long is refused, not cut."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_STARTERS:
        raise StartersError(
            gettext("At most %(count)d starter questions, one a line.") % {"count": MAX_STARTERS}
        )
    if any(len(line) > MAX_CHARS for line in lines):
        raise StartersError(
            gettext("A starter question has at most %(count)d characters.") % {"count": MAX_CHARS}
        )
    return lines


def of(collection: Collection) -> list[str]:
    return [line for line in collection.starters.splitlines() if line.strip()]


@transaction.atomic
def set_starters(collection: Collection, text: str, actor: User) -> None:
    before, after = of(collection), parse(text)
    if before == after:
        return
    collection.starters = "\n".join(after)
    collection.save(update_fields=["starters"])
    audit.record(
        audit.Action.STARTERS_CHANGED,
        actor,
        collection,
        detail={"before": before, "after": after},
    )


def offered_to(user: User) -> list[tuple[Collection, str]]:
    """The starters of the collections the user may read, a few from each in turn."""
    per_collection = [
        [(c, q) for q in of(c)] for c in access.collections_visible_to(user).exclude(starters="")
    ]
    offered: list[tuple[Collection, str]] = []
    for row in range(MAX_STARTERS):
        offered += [pairs[row] for pairs in per_collection if row < len(pairs)]
    return offered[:MAX_OFFERED]
