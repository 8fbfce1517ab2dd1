"""Hygiene of an organization: what is old, unused, unreachable or dead, read in a fixed
number of queries whatever its size. `report(org, now=…)` takes the clock as an argument so
the page, the command and the tests agree on "now".

- secrets by age since their last change (the row's `updated_at`) and their last delivery
  (the last resolution whose manifest delivered that variable);
- overdue secrets: older than their group's `max_age_days`;
- groups that reach no project;
- dead definitions: group variables shadowed in every project their group reaches (by a
  project variable, a higher priority or a lost conflict), decided by the same pure rules
  as resolution (orgenv.resolution.resolve) so the page never disagrees with it;
- tokens unused for UNUSED_DAYS (never used counts from creation) or expiring within
  EXPIRING_DAYS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from orgenv.forensics.manifests import last_deliveries
from orgenv.models import Organization, ProjectToken, ProjectVariable, Variable, VariableGroup
from orgenv.resolution import Definition, GroupLayer, group_source, resolve
from orgenv.selectors.reach import GrantMatrix, grant_matrix

UNUSED_DAYS = 30
EXPIRING_DAYS = 14


@dataclass(frozen=True)
class SecretAge:
    owner: str  # group:<name> or project:<slug>
    name: str
    changed_at: datetime
    age_days: int
    last_delivered: datetime | None
    max_age_days: int | None
    overdue: bool


def is_overdue(changed_at: datetime, max_age_days: int | None, now: datetime) -> bool:
    """The one rule: unchanged for longer than max_age_days (None: no maximum)."""
    return max_age_days is not None and changed_at < now - timedelta(days=max_age_days)


@dataclass(frozen=True)
class DeadDefinition:
    group: str
    name: str
    projects: tuple[str, ...]  # the projects it reaches, where something else wins


@dataclass(frozen=True)
class TokenFlag:
    token: ProjectToken
    problem: str  # "unused for N days", "never used", "expires in N days"


@dataclass
class Report:
    organization: Organization
    now: datetime
    secrets: list[SecretAge]
    unreaching_groups: list[VariableGroup]
    dead: list[DeadDefinition]
    tokens: list[TokenFlag]

    @property
    def overdue(self) -> list[SecretAge]:
        return [s for s in self.secrets if s.overdue]


def overdue_secrets(group: VariableGroup, *, now: datetime) -> list[str]:
    """Names of the group's secrets unchanged for longer than its max_age_days."""
    if group.max_age_days is None:
        return []
    secrets = group.variables.filter(is_secret=True).order_by("name")
    return [
        name
        for name, changed in secrets.values_list("name", "updated_at")
        if is_overdue(changed, group.max_age_days, now)
    ]


def _secrets(org: Organization, now: datetime) -> list[SecretAge]:
    delivered = last_deliveries(org)
    rows = []
    for vid, name, changed, group, max_age in Variable.objects.filter(
        group__organization=org, is_secret=True
    ).values_list("id", "name", "updated_at", "group__name", "group__max_age_days"):
        age = (now - changed).days
        rows.append(
            SecretAge(
                f"group:{group}",
                name,
                changed,
                age,
                delivered.get(("v", vid)),
                max_age,
                is_overdue(changed, max_age, now),
            )
        )
    for pid, name, changed, project in ProjectVariable.objects.filter(
        project__organization=org, is_secret=True
    ).values_list("id", "name", "updated_at", "project__slug"):
        age = (now - changed).days
        rows.append(
            SecretAge(
                f"project:{project}", name, changed, age, delivered.get(("p", pid)), None, False
            )
        )
    # The oldest first: what most needs rotating.
    return sorted(rows, key=lambda s: (s.changed_at, s.owner, s.name))


def _dead(org: Organization, matrix: GrantMatrix) -> list[DeadDefinition]:
    by_group: dict[int, list[tuple[int, str]]] = {}
    for gid, vid, name in Variable.objects.filter(group__organization=org).values_list(
        "group_id", "id", "name"
    ):
        by_group.setdefault(gid, []).append((vid, name))
    by_project: dict[int, list[tuple[int, str]]] = {}
    for pid, did, name in ProjectVariable.objects.filter(project__organization=org).values_list(
        "project_id", "id", "name"
    ):
        by_project.setdefault(pid, []).append((did, name))
    reached: dict[int, list[str]] = {}  # variable id → projects it reaches
    won: dict[int, int] = {}  # variable id → in how many of them it wins
    for row in matrix.rows:
        layers = []
        for group, cell in zip(matrix.groups, row.cells, strict=True):
            if not cell.reaches:
                continue
            source = group_source(group.name)
            defs = [
                Definition(name, "", False, source, group.priority, ("v", vid))
                for vid, name in by_group.get(group.pk, [])
            ]
            for vid, _ in by_group.get(group.pk, []):
                reached.setdefault(vid, []).append(row.project.slug)
            layers.append(GroupLayer(group.name, group.priority, defs))
        project_defs = [
            Definition(name, "", False, "project", ref=("p", did))
            for did, name in by_project.get(row.project.pk, [])
        ]
        for resolved in resolve(layers, project_defs).variables.values():
            kind, ref = resolved.ref
            if kind == "v":
                won[ref] = won.get(ref, 0) + 1
    names = {
        vid: (group.name, name)
        for group in matrix.groups
        for vid, name in by_group.get(group.pk, [])
    }
    dead = [
        DeadDefinition(*names[vid], tuple(projects))
        for vid, projects in reached.items()
        if not won.get(vid)
    ]
    return sorted(dead, key=lambda d: (d.group, d.name))


def _tokens(org: Organization, now: datetime) -> list[TokenFlag]:
    active = (
        ProjectToken.objects.filter(project__organization=org)
        .active(now=now)
        .select_related("project")
    )
    flags = []
    for token in active.order_by("project__slug", "name"):
        if token.expires_at is not None and token.expires_at <= now + timedelta(days=EXPIRING_DAYS):
            days = -(-(token.expires_at - now) // timedelta(days=1))  # whole days, rounded up
            flags.append(TokenFlag(token, f"expires in {days} day{'s' if days != 1 else ''}"))
        last = token.last_used_at
        if last is None and token.created_at <= now - timedelta(days=UNUSED_DAYS):
            flags.append(TokenFlag(token, "never used"))
        elif last is not None and last <= now - timedelta(days=UNUSED_DAYS):
            flags.append(TokenFlag(token, f"unused for {(now - last).days} days"))
    return flags


def report(org: Organization, *, now: datetime) -> Report:
    matrix = grant_matrix(org)
    unreaching = [
        group
        for index, group in enumerate(matrix.groups)
        if not any(row.cells[index].reaches for row in matrix.rows)
    ]
    return Report(org, now, _secrets(org, now), unreaching, _dead(org, matrix), _tokens(org, now))
