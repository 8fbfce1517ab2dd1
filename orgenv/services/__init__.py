"""Writes with side effects. Every function is keyword-only, validates with full_clean() before
save(), and runs in a transaction, so a rejected write leaves nothing half-saved.

The `*_set` functions are idempotent: when nothing would change they do not save, so history
only records real changes (a re-applied configuration adds no history rows). They return what
happened, one of CREATED, UPDATED or UNCHANGED, for summaries that never need a value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models, transaction

from ..models import (
    Membership,
    Organization,
    Project,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
    starts_protected,
)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"

M = TypeVar("M", bound=models.Model)


def _upsert(
    model: type[M],
    lookup: dict[str, Any],
    fields: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> tuple[M, str]:
    """Create the row matching `lookup` with `defaults` and `fields`, or update only the
    `fields` that differ (`defaults` apply to creation only).

    Comparison happens on Python values, so an encrypted value is compared decrypted: the same
    plaintext is never re-encrypted and re-saved."""
    # FOR NO KEY UPDATE, not FOR UPDATE: the access events that resolutions insert meanwhile
    # reference these rows (FOR KEY SHARE) and must not wait for a long apply to commit.
    instance = model._default_manager.select_for_update(no_key=True).filter(**lookup).first()
    if instance is None:
        instance = model(**lookup, **{**(defaults or {}), **fields})
        instance.full_clean()
        instance.save()
        return instance, CREATED
    changed = [name for name, value in fields.items() if getattr(instance, name) != value]
    if not changed:
        return instance, UNCHANGED
    for name in changed:
        setattr(instance, name, fields[name])
    if "value" in changed and "not_a_secret" not in fields and hasattr(instance, "not_a_secret"):
        # "Not a secret" acknowledged one value; a new value has to be judged again.
        instance.not_a_secret = False
    instance.full_clean()
    instance.save()
    return instance, UPDATED


@transaction.atomic
def organization_set(
    *, slug: str, defaults: dict[str, Any] | None = None, **fields: Any
) -> tuple[Organization, str]:
    return _upsert(Organization, {"slug": slug}, fields, defaults)


@transaction.atomic
def membership_set(
    *, organization: Organization, user: Any, role: str | None = None
) -> tuple[Membership, str]:
    """Make the user a member; role None keeps an existing role (new ones are members)."""
    fields = {"role": role} if role else {}
    return _upsert(
        Membership,
        {"organization": organization, "user": user},
        fields,
        {"role": Membership.Role.MEMBER},
    )


@transaction.atomic
def team_set(*, organization: Organization, slug: str) -> tuple[Team, str]:
    return _upsert(Team, {"organization": organization, "slug": slug}, {})


@transaction.atomic
def project_set(
    *, organization: Organization, slug: str, defaults: dict[str, Any] | None = None, **fields: Any
) -> tuple[Project, str]:
    return _upsert(Project, {"organization": organization, "slug": slug}, fields, defaults)


@transaction.atomic
def group_set(*, organization: Organization, name: str, **fields: Any) -> tuple[VariableGroup, str]:
    """Create or update a group's own fields (description, environment, priority, access,
    protection). A new group labelled production starts protected unless `protected` is given."""
    defaults = {"protected": starts_protected(fields.get("environment", ""))}
    return _upsert(VariableGroup, {"organization": organization, "name": name}, fields, defaults)


def _definition_fields(value: str | None, is_secret: bool) -> dict[str, Any]:
    # value None keeps the current value (a file may list a secret without it); a new row
    # without one fails full_clean, naming the field.
    return {"is_secret": is_secret} if value is None else {"value": value, "is_secret": is_secret}


@transaction.atomic
def variable_set(
    *, group: VariableGroup, name: str, value: str | None, is_secret: bool
) -> tuple[Variable, str]:
    return _upsert(Variable, {"group": group, "name": name}, _definition_fields(value, is_secret))


@transaction.atomic
def project_variable_set(
    *, project: Project, name: str, value: str | None, is_secret: bool
) -> tuple[ProjectVariable, str]:
    return _upsert(
        ProjectVariable, {"project": project, "name": name}, _definition_fields(value, is_secret)
    )


@transaction.atomic
def definitions_prune(*, queryset: models.QuerySet, keep: Iterable[str]) -> int:
    """Delete the variables of `queryset` whose name is not in `keep`; returns how many.

    Deleted one by one so each deletion leaves a history row."""
    doomed = list(queryset.exclude(name__in=list(keep)))
    for definition in doomed:
        definition.delete()
    return len(doomed)


def _set_relation(manager: Any, wanted: Iterable[models.Model], *, prune: bool) -> tuple[int, int]:
    wanted_by_pk = {obj.pk: obj for obj in wanted}
    current = set(manager.values_list("pk", flat=True))
    to_add = [obj for pk, obj in wanted_by_pk.items() if pk not in current]
    to_remove = sorted(current - wanted_by_pk.keys()) if prune else []
    if to_remove:
        manager.remove(*to_remove)
    if to_add:
        # The m2m_changed guards in orgenv.signals refuse cross-organization grants and
        # grants that break the environment guard, whatever called us.
        manager.add(*to_add)
    return len(to_add), len(to_remove)


@transaction.atomic
def group_set_grants(
    *,
    group: VariableGroup,
    projects: Iterable[Project] | None = None,
    teams: Iterable[Team] | None = None,
    prune: bool = False,
) -> tuple[int, int]:
    """Grant the group to these projects and teams. Grants not listed are removed only with
    prune=True; None leaves that kind of grant alone. Returns (added, removed)."""
    added = removed = 0
    for manager, wanted in ((group.projects, projects), (group.teams, teams)):
        if wanted is not None:
            a, r = _set_relation(manager, wanted, prune=prune)
            added, removed = added + a, removed + r
    return added, removed


@transaction.atomic
def members_add(*, manager: Any, users: Iterable[Any]) -> int:
    """Add users to a project's or team's members (never removes anyone); returns how many."""
    return _set_relation(manager, users, prune=False)[0]


@transaction.atomic
def team_add_projects(*, team: Team, projects: Iterable[Project]) -> int:
    """Put projects in a team (never takes any out); returns how many were added."""
    return _set_relation(team.projects, projects, prune=False)[0]


@transaction.atomic
def project_set_groups(*, project: Project, groups: Iterable[VariableGroup]) -> tuple[int, int]:
    """Make `groups` exactly the groups that select this project (grants from the project's
    side; access "all" and team grants are the groups' own business). The environment guard
    and the organization check of orgenv.signals apply; each group changed gets a history
    row. Returns (added, removed)."""
    return _set_relation(project.granted_groups, groups, prune=True)
