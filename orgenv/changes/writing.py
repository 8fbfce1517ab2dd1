"""Writing a change request to its group: `write` makes the group what the request proposes,
through the models (their validation, the grant guards, simple-history); `measure` resolves
the organization before and after a write; `preview` measures one and rolls it back."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction

from orgenv.crypto import decrypt
from orgenv.models import ChangeRequest, Organization, Project, Team, Variable, VariableGroup
from orgenv.resolution.impact import Impact, difference, resolve_world
from orgenv.selectors.reach import load_world, opened

from .state import delta, proposed, snapshot


class _Rollback(Exception):
    pass


def preview(request: ChangeRequest) -> Impact | None:
    """What applying the request now would do to every project's environment, measured
    and rolled back; None when it no longer applies (the change is refused by a guard)."""
    impact = None
    try:
        with transaction.atomic():
            group = VariableGroup.objects.get(pk=request.group_id)
            impact = measure(request.organization, lambda: write(request, group, ""))
            raise _Rollback
    except _Rollback:
        pass
    except ValidationError:
        return None
    return impact


def measure(organization: Organization, change: Callable[[], object]) -> Impact:
    """What `change` (run here, in the caller's transaction) does to every project's
    environment: the organization resolved before and after, as the impact preview does."""
    before = resolve_world(opened(load_world(organization)))
    change()
    after = resolve_world(opened(load_world(Organization(pk=organization.pk)), committed=False))
    return difference(before, after)


def write(request: ChangeRequest, group: VariableGroup, note: str) -> None:
    """Make `group` what `request` proposes, through the models (their validation, guards
    and history, each history row's reason `note`)."""
    if request.kind == ChangeRequest.Kind.DELETION:
        group._change_reason = note
        group.delete()
        return
    current = snapshot(group.pk)
    change = delta(current, proposed(current, request))
    org = group.organization_id
    if change.projects_removed:
        group.projects.remove(*[pk for pk, _ in change.projects_removed])
    if change.teams_removed:
        group.teams.remove(*[pk for pk, _ in change.teams_removed])
    if change.fields:
        for name, value in change.fields.items():
            setattr(group, name, value)
        group._change_reason = note
        group.full_clean()
        group.save()
    added = [pk for pk, _ in change.projects_added]
    if added:
        group.projects.add(*Project.objects.filter(organization_id=org, pk__in=added))
    added = [pk for pk, _ in change.teams_added]
    if added:
        group.teams.add(*Team.objects.filter(organization_id=org, pk__in=added))
    rows = {
        v.name: v for v in Variable.objects.filter(group=group, name__in=list(change.variables))
    }
    for name, stored in change.variables.items():
        row = rows.get(name)
        if stored.token is None:
            if row is not None:
                row._change_reason = note
                row.delete()
            continue
        row = row or Variable(group=group, name=name)
        row.value = decrypt(stored.token)  # validated as typed text, encrypted again on save
        row.is_secret, row.not_a_secret = stored.is_secret, stored.not_a_secret
        row._change_reason = note
        row.full_clean()
        row.save()
