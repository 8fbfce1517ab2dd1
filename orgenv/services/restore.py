"""Restore: a group (its fields, grants, variables and secret flags) or a project's variables
made what they were at a past moment, as a new recorded change (history rows whose change
reason reads "restored to <time>", attributed to the actor).

Values move as stored. A history row's Fernet token is written to the live row as it is
(crypto.Ciphertext) when the first key of FERNET_KEYS signed it; when another configured key
did, it is re-encrypted with the first (crypto.rotate); when no configured key did, the
restore refuses and names the rows. Which key signed a token is checked on its signature
alone (crypto.signer), without decrypting it. Deciding whether a row changes
compares plaintexts in memory, never shown.

Planning (`plan_group`, `plan_project`) reads; `restore_apply` writes exactly the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from orgenv import crypto
from orgenv import models as m
from orgenv.models import Organization, Project, ProjectVariable, Team, Variable, VariableGroup
from orgenv.resolution.impact import Change, Entry, GroupState, Impact, ProjectState, preview
from orgenv.selectors.as_of import DELETED, project_row_as_of
from orgenv.selectors.reach import load_world, opened

GROUP_FIELDS = ("name", "description", "environment", "priority", "access")


class RestoreError(ValueError):
    """The restore cannot be made: values no configured key opens, for example."""


class NothingThen(RestoreError):
    """No group by that name at that time."""


@dataclass(frozen=True)
class Stored:
    """A value at the restore time: its token as it will be written, and its plaintext for
    comparison only."""

    token: crypto.Ciphertext
    plaintext: str
    is_secret: bool


@dataclass
class RestorePlan:
    organization: Organization
    label: str  # ORG/NAME as the user gave it
    when: datetime
    group_id: int | None = None  # a group restore…
    project: Project | None = None  # …or a project's variables
    exists: bool = True  # False: the group was deleted since and comes back
    fields: dict[str, object] = field(default_factory=dict)
    project_ids: set[int] = field(default_factory=set)
    team_ids: set[int] = field(default_factory=set)
    variables: dict[str, Stored] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)  # what changes, row by row, no value
    impact: Impact = field(default_factory=lambda: Impact(()))

    @property
    def reason(self) -> str:
        return f"restored to {self.when.isoformat()}"


def _seal(token: str, where: str, refused: list[str]) -> crypto.Ciphertext | None:
    position = crypto.signer(token)
    if position is None:
        refused.append(where)
        return None
    return crypto.Ciphertext(token if position == 0 else crypto.rotate(token))


def _latest(rows: list[tuple]) -> dict[int, tuple]:
    latest: dict[int, tuple] = {}
    for row in rows:
        latest[row[0]] = row
    return latest


def _stored_at(history: type, owner: str, owner_id: int, when: datetime) -> dict[str, Stored]:
    """The variables of one group or project at `when`, sealed for writing."""
    rows = _latest(
        list(
            history.objects.filter(
                id__in=history.objects.filter(**{owner: owner_id}).values("id"),
                history_date__lte=when,
            )
            .order_by("id", "history_date", "history_id")
            .values_list(
                "id",
                "history_id",
                owner,
                "name",
                "is_secret",
                crypto.stored_token("value"),
                "history_type",
            )
        )
    )
    refused: list[str] = []
    stored = {}
    table = history._meta.db_table
    for _, hid, oid, name, is_secret, token, kind in sorted(rows.values(), key=lambda r: r[3]):
        if kind == DELETED or oid != owner_id:
            continue
        sealed = _seal(token, f"{table} history_id={hid} ({name})", refused)
        if sealed is not None:
            stored[name] = Stored(sealed, crypto.decrypt(sealed, table=table), bool(is_secret))
    if refused:
        raise RestoreError(
            "These values were encrypted with a key that is no longer in FERNET_KEYS: "
            + ", ".join(refused)
            + ". Add that key back to FERNET_KEYS (after the first one) and restore again."
        )
    return stored


def _variable_steps(current: dict[str, Entry], target: dict[str, Stored]) -> list[str]:
    steps = []
    for name in sorted(current.keys() | target.keys()):
        now, then = current.get(name), target.get(name)
        if now is None:
            steps.append(f"variable {name}: restored (deleted since)")
        elif then is None:
            steps.append(f"variable {name}: removed (created since)")
        else:
            parts = []
            if now.value != then.plaintext:
                secret = now.is_secret or then.is_secret
                parts.append("value changed" if secret else f"{now.value!r} → {then.plaintext!r}")
            if now.is_secret != then.is_secret:
                parts.append("secret again" if then.is_secret else "public again")
            if parts:
                steps.append(f"variable {name}: {', '.join(parts)}")
    return steps


def _entries(stored: dict[str, Stored]) -> dict[str, Entry]:
    return {name: Entry(s.plaintext, s.is_secret) for name, s in stored.items()}


def plan_group(organization: Organization, name: str, when: datetime) -> RestorePlan:
    """What restoring group NAME of the organization to `when` would change."""
    rows = _latest(
        list(
            m.HistoricalVariableGroup.objects.filter(
                organization_id=organization.pk, history_date__lte=when
            )
            .order_by("id", "history_date", "history_id")
            .values_list("id", "history_id", "history_type", *GROUP_FIELDS)
        )
    )
    matches = [r for r in rows.values() if r[3] == name and r[2] != DELETED]
    if not matches:
        raise NothingThen(
            f"There was no group {name!r} in organization {organization.slug!r} at "
            f"{when.isoformat()}."
        )
    gid, hid, _, *values = matches[0]
    plan = RestorePlan(organization, f"{organization.slug}/{name}", when, group_id=gid)
    plan.fields = dict(zip(GROUP_FIELDS, values, strict=True))

    # Grants at that time, to projects and teams that still exist.
    then_projects = set(
        m.HistoricalVariableGroup_projects.objects.filter(history_id=hid).values_list(
            "project_id", flat=True
        )
    )
    then_teams = set(
        m.HistoricalVariableGroup_teams.objects.filter(history_id=hid).values_list(
            "team_id", flat=True
        )
    )
    projects = dict(Project.objects.filter(organization=organization).values_list("id", "slug"))
    teams = dict(Team.objects.filter(organization=organization).values_list("id", "slug"))
    plan.project_ids = then_projects & projects.keys()
    plan.team_ids = then_teams & teams.keys()
    plan.variables = _stored_at(m.HistoricalVariable, "group_id", gid, when)

    group = VariableGroup.objects.filter(pk=gid).first()
    world = opened(load_world(organization))
    target = GroupState(
        plan.fields["name"],
        plan.fields["priority"],
        plan.fields["environment"],
        plan.fields["access"],
        frozenset(projects[p] for p in plan.project_ids),
        frozenset(teams[t] for t in plan.team_ids),
        _entries(plan.variables),
    )
    if group is None:
        plan.exists = False
        plan.steps.append(f"group {name}: recreated (deleted since)")
        current = GroupState(name)
    else:
        current = world.groups[group.name]
        for key in GROUP_FIELDS:
            now, then = getattr(group, key), plan.fields[key]
            if now != then:
                plan.steps.append(f"{key}: {now!r} → {then!r}")
    for slug in sorted(target.projects - current.projects):
        plan.steps.append(f"grant to project {slug}: restored")
    for slug in sorted(current.projects - target.projects):
        plan.steps.append(f"grant to project {slug}: removed")
    for slug in sorted(target.teams - current.teams):
        plan.steps.append(f"grant to team {slug}: restored")
    for slug in sorted(current.teams - target.teams):
        plan.steps.append(f"grant to team {slug}: removed")
    for pid in sorted(then_projects - projects.keys()):
        plan.steps.append(f"grant to project id {pid}: not restored (the project is deleted)")
    plan.steps += _variable_steps(dict(current.variables), plan.variables)
    plan.impact = preview(world, Change(groups={group.name if group else name: target}))
    return plan


def plan_project(project: Project, when: datetime) -> RestorePlan:
    """What restoring the project's variables to `when` would change."""
    project_row_as_of(project.pk, when)  # AsOfError when it did not exist then
    org = project.organization
    plan = RestorePlan(org, f"{org.slug}/{project.slug}", when, project=project)
    plan.variables = _stored_at(m.HistoricalProjectVariable, "project_id", project.pk, when)
    world = opened(load_world(org))
    current = world.projects[project.slug]
    plan.steps = _variable_steps(dict(current.variables), plan.variables)
    target = ProjectState(
        current.slug, current.environment, current.teams, _entries(plan.variables)
    )
    plan.impact = preview(world, Change(projects={project.slug: target}))
    return plan


def _restore_definitions(
    queryset: QuerySet,
    make: Callable[..., Variable | ProjectVariable],
    variables: dict[str, Stored],
    reason: str,
) -> None:
    existing = {d.name: d for d in queryset}
    for name, stored in variables.items():
        definition = existing.pop(name, None)
        if definition is None:
            definition = make(name=name)
        elif definition.value == stored.plaintext and definition.is_secret == stored.is_secret:
            continue
        definition.value = stored.token  # the token as stored: never re-encrypted
        definition.is_secret = stored.is_secret
        definition._change_reason = reason
        # The value is a token here; its rules held when it was first written.
        definition.full_clean(exclude=["value"])
        definition.save()
    for definition in existing.values():
        definition._change_reason = reason
        definition.delete()


@transaction.atomic
def restore_apply(*, plan: RestorePlan) -> None:
    """Make the restore the plan describes, as one recorded change."""
    reason = plan.reason
    if plan.project is not None:
        _restore_definitions(
            ProjectVariable.objects.select_for_update().filter(project=plan.project),
            lambda name: ProjectVariable(project=plan.project, name=name),
            plan.variables,
            reason,
        )
        return
    group = VariableGroup.objects.select_for_update().filter(pk=plan.group_id).first()
    if group is None:
        group = VariableGroup(pk=plan.group_id, organization=plan.organization)
    else:
        # Grants that go, go first: a label restored next never meets a grant about to go.
        group.projects.remove(*set(group.projects.values_list("pk", flat=True)) - plan.project_ids)
        group.teams.remove(*set(group.teams.values_list("pk", flat=True)) - plan.team_ids)
    changed = [k for k, v in plan.fields.items() if getattr(group, k) != v]
    if changed or group._state.adding:
        for key, value in plan.fields.items():
            setattr(group, key, value)
        group._change_reason = reason
        group.full_clean()
        group.save()
    group.projects.add(*plan.project_ids)
    group.teams.add(*plan.team_ids)
    _restore_definitions(
        Variable.objects.select_for_update().filter(group=group),
        lambda name: Variable(group=group, name=name),
        plan.variables,
        reason,
    )
