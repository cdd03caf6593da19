"""Groups, memberships and roles: every change is audited in the same transaction."""

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.utils.translation import gettext

from assistant import audit

# A role is membership of a group that carries the role's permission.
ROLES = {
    "auditor": ("Auditors", "assistant.view_queryrecord"),
    "collection_admin": ("Collection admins", "ingestion.add_collection"),
    "batch_jobs": ("Batch job runners", "assistant.run_batch_jobs"),
}


class PeopleError(ValueError):
    pass


def role_group(role: str) -> Group:
    name, permission = ROLES[role]
    group, _ = Group.objects.get_or_create(name=name)
    app_label, codename = permission.split(".")
    group.permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    return group


def role_group_names() -> set[str]:
    return {name for name, _ in ROLES.values()}


def roles_of(user: User) -> set[str]:
    names = set(user.groups.values_list("name", flat=True))
    return {role for role, (name, _) in ROLES.items() if name in names}


def plain_groups() -> list[Group]:
    """Groups that can be granted collections (role groups are not)."""
    return list(Group.objects.exclude(name__in=role_group_names()).order_by("name"))


@transaction.atomic
def create_group(name: str, actor: User) -> Group:
    name = name.strip()[:150]
    if not name:
        raise PeopleError(gettext("A group needs a name."))
    if Group.objects.filter(name__iexact=name).exists():
        raise PeopleError(gettext("A group named “%(name)s” already exists.") % {"name": name})
    group = Group.objects.create(name=name)
    audit.record(audit.Action.GROUP_CREATED, actor, group)
    return group


@transaction.atomic
def set_memberships(user: User, groups: Iterable[Group], actor: User | None) -> None:
    """Set the user's plain groups (roles untouched). actor None: single sign-on did it."""
    before = {g.name for g in user.groups.exclude(name__in=role_group_names())}
    after = {g.name for g in groups if g.name not in role_group_names()}
    if before == after:
        return
    if actor is not None and not may_change_roles(actor, user):
        raise PeopleError(gettext("You cannot change your own groups."))
    user.groups.remove(*Group.objects.filter(name__in=before - after))
    user.groups.add(*Group.objects.filter(name__in=after - before))
    audit.record(
        audit.Action.MEMBERSHIP_CHANGED,
        actor,
        user,
        detail={"before": sorted(before), "after": sorted(after)},
    )


def may_change_roles(actor: User, user: User) -> bool:
    """A user administrator who is not a superuser cannot give themselves roles or groups (a
    group is read access to its collections)."""
    return actor.is_superuser or actor != user


def may_change_active(actor: User, user: User) -> bool:
    """Only a superuser deactivates (or reactivates) a superuser."""
    return actor.is_superuser or not user.is_superuser


@transaction.atomic
def set_roles(user: User, roles: Iterable[str], actor: User | None) -> None:
    wanted = set(roles) & set(ROLES)
    before = roles_of(user)
    if wanted == before:
        return
    if actor is not None and not may_change_roles(actor, user):
        raise PeopleError(gettext("You cannot change your own roles."))
    for role in before - wanted:
        user.groups.remove(role_group(role))
    for role in wanted - before:
        user.groups.add(role_group(role))
    audit.record(
        audit.Action.ROLES_CHANGED,
        actor,
        user,
        detail={"before": sorted(before), "after": sorted(wanted)},
    )


@transaction.atomic
def set_active(user: User, active: bool, actor: User) -> None:
    if user.is_active == active:
        return
    if user == actor and not active:
        raise PeopleError(gettext("You cannot deactivate yourself."))
    if not may_change_active(actor, user):
        raise PeopleError(gettext("Only a superuser can deactivate or reactivate a superuser."))
    user.is_active = active
    user.save(update_fields=["is_active"])
    action = audit.Action.USER_REACTIVATED if active else audit.Action.USER_DEACTIVATED
    audit.record(action, actor, user)


@transaction.atomic
def update_person(
    user: User, groups: Iterable[Group], roles: Iterable[str], active: bool, actor: User
) -> None:
    """The person page's save: its three changes are made together or not at all."""
    set_memberships(user, groups, actor)
    set_roles(user, roles, actor)
    set_active(user, active, actor)
