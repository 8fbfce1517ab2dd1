"""Which groups reach which projects, for many projects at once: the one org-wide loader.

Five queries whatever the number of projects and groups (projects, groups, the two grant
tables, the project-team links). Reach is decided by the same pure rule as resolution
(orgenv.resolution.group_reach), so the grants view, the admin's group panels, the home
page, the impact preview and "why" never disagree with what runners receive.

`load_world` adds the variables to it: an organization as the pure impact preview
(orgenv.resolution.impact) and "why" see it, its values as stored (crypto.Ciphertext) until
`opened` decrypts them for a comparison.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max

from orgenv import crypto
from orgenv.crypto import Ciphertext
from orgenv.models import (
    AuditEvent,
    Organization,
    Project,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
)
from orgenv.resolution import (
    PROJECT_SOURCE,
    Definition,
    GroupLayer,
    Reach,
    group_reach,
    group_source,
    resolve,
)
from orgenv.resolution.impact import Entry, GroupState, ProjectState, World
from orgenv.resolution.why import Why, explain_name


@dataclass(frozen=True)
class ProjectRef:
    id: int
    organization_id: int
    slug: str
    environment: str

    @property
    def pk(self) -> int:  # read like the model instance it stands for
        return self.id


@dataclass(frozen=True)
class GroupRef:
    id: int
    organization_id: int
    name: str
    priority: int
    environment: str
    access: str

    @property
    def pk(self) -> int:  # read like the model instance it stands for
        return self.id


@dataclass
class OrgReach:
    projects: list[ProjectRef]  # by organization, then slug
    groups: list[GroupRef]  # by organization, then priority (highest first), then name
    selected: set[tuple[int, int]] = field(default_factory=set)  # (group id, project id)
    group_teams: dict[int, set[int]] = field(default_factory=dict)
    project_teams: dict[int, set[int]] = field(default_factory=dict)

    def reach(self, group: GroupRef, project: ProjectRef) -> Reach:
        if group.organization_id != project.organization_id:
            return Reach(None, "another organization")
        return group_reach(
            group_environment=group.environment,
            access=group.access,
            selected=(group.id, project.id) in self.selected,
            via_team=bool(
                self.group_teams.get(group.id, set()) & self.project_teams.get(project.id, set())
            ),
            project_environment=project.environment,
        )

    def reaching(self, project: ProjectRef) -> list[GroupRef]:
        return [g for g in self.groups if self.reach(g, project).reaches]


def load_reach(
    organization_ids: Collection[int],
    *,
    project_ids: Collection[int] | None = None,
    group_ids: Collection[int] | None = None,
) -> OrgReach:
    """Every project and group of these organizations (or only the ids given), with the
    grants and team links that decide reach."""
    projects = Project.objects.filter(organization_id__in=organization_ids)
    if project_ids is not None:
        projects = projects.filter(pk__in=project_ids)
    groups = VariableGroup.objects.filter(organization_id__in=organization_ids)
    if group_ids is not None:
        groups = groups.filter(pk__in=group_ids)
    result = OrgReach(
        [
            ProjectRef(*row)
            for row in projects.order_by("organization_id", "slug").values_list(
                "id", "organization_id", "slug", "environment"
            )
        ],
        [
            GroupRef(*row)
            for row in groups.order_by("organization_id", "-priority", "name").values_list(
                "id", "organization_id", "name", "priority", "environment", "access"
            )
        ],
    )
    group_pks = groups.values("pk")
    result.selected = set(
        VariableGroup.projects.through.objects.filter(variablegroup_id__in=group_pks).values_list(
            "variablegroup_id", "project_id"
        )
    )
    group_teams: dict[int, set[int]] = defaultdict(set)
    for gid, tid in VariableGroup.teams.through.objects.filter(
        variablegroup_id__in=group_pks
    ).values_list("variablegroup_id", "team_id"):
        group_teams[gid].add(tid)
    project_teams: dict[int, set[int]] = defaultdict(set)
    for pid, tid in Project.teams.through.objects.filter(
        project_id__in=projects.values("pk")
    ).values_list("project_id", "team_id"):
        project_teams[pid].add(tid)
    result.group_teams, result.project_teams = dict(group_teams), dict(project_teams)
    return result


@dataclass
class GrantRow:
    project: ProjectRef
    last_resolution: datetime | None
    cells: list[Reach]  # one per group, in the order of GrantMatrix.groups

    @property
    def reaching(self) -> int:
        return sum(1 for c in self.cells if c.reaches)


@dataclass
class GrantMatrix:
    groups: list[GroupRef]
    rows: list[GrantRow]


def grant_matrix(org: Organization) -> GrantMatrix:
    """The grants view: every project × every group of the organization, with the last run
    of each project. Six queries."""
    reach = load_reach([org.pk])
    # The last run: a resolution by a runner token. resolve_env and the pages are people
    # reading, and an as-of resolution is incident work; neither is an execution.
    last = dict(
        AuditEvent.objects.filter(organization=org, kind=AuditEvent.Kind.RESOLUTION)
        .exclude(token_prefix="")
        .order_by()
        .values("project_id")
        .annotate(last=Max("at"))
        .values_list("project_id", "last")
    )
    rows = [
        GrantRow(project, last.get(project.id), [reach.reach(g, project) for g in reach.groups])
        for project in reach.projects
    ]
    return GrantMatrix(reach.groups, rows)


def environment_counts(projects: Collection[Project]) -> dict[int, tuple[int, int]]:
    """(variables, secrets) of each project's effective environment, by project id, for
    many projects at once and nothing decrypted (the home page). Seven queries: the reach
    loader's five, the groups' variable names, the projects' variable names."""
    if not projects:
        return {}
    org_ids = {p.organization_id for p in projects}
    reach = load_reach(org_ids, project_ids=[p.pk for p in projects])
    group_defs: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for gid, name, is_secret in Variable.objects.filter(
        group__organization_id__in=org_ids
    ).values_list("group_id", "name", "is_secret"):
        group_defs[gid].append((name, is_secret))
    project_defs: dict[int, list[Definition]] = defaultdict(list)
    for pid, name, is_secret in ProjectVariable.objects.filter(
        project_id__in=[p.id for p in reach.projects]
    ).values_list("project_id", "name", "is_secret"):
        project_defs[pid].append(Definition(name, None, is_secret, PROJECT_SOURCE))
    counts = {}
    for project in reach.projects:
        layers = [
            GroupLayer(
                g.name,
                g.priority,
                [
                    Definition(name, None, is_secret, group_source(g.name), g.priority)
                    for name, is_secret in group_defs[g.id]
                ],
            )
            for g in reach.reaching(project)
        ]
        resolution = resolve(layers, project_defs[project.id])
        counts[project.id] = (len(resolution.variables), len(resolution.secrets))
    return counts


def _stored(
    model: type[Variable | ProjectVariable], owner: str, organization: Organization
) -> dict[int, dict[str, Entry[Ciphertext]]]:
    """Every variable of the organization's groups (or projects), by owner id, sealed."""
    table = model._meta.db_table
    found: dict[int, dict[str, Entry[Ciphertext]]] = defaultdict(dict)
    for row, owner_id, name, is_secret, token in model.objects.filter(
        **{f"{owner}__organization": organization}
    ).values_list("id", f"{owner}_id", "name", "is_secret", crypto.stored_token("value")):
        found[owner_id][name] = Entry(Ciphertext(token), bool(is_secret), (table, row))
    return found


def load_world(organization: Organization) -> World[Ciphertext]:
    """The organization for the impact preview and "why", nothing decrypted. Eight queries
    whatever its size: the reach loader's five, its teams, the group and project variables."""
    reach = load_reach([organization.pk])
    teams = dict(Team.objects.filter(organization=organization).values_list("id", "slug"))
    group_variables = _stored(Variable, "group", organization)
    project_variables = _stored(ProjectVariable, "project", organization)
    projects = {p.id: p.slug for p in reach.projects}
    selected: dict[int, set[str]] = defaultdict(set)
    for gid, pid in reach.selected:
        selected[gid].add(projects[pid])
    return World(
        projects={
            p.slug: ProjectState(
                p.slug,
                p.environment,
                frozenset(teams[t] for t in reach.project_teams.get(p.id, ())),
                project_variables[p.id],
            )
            for p in reach.projects
        },
        groups={
            g.name: GroupState(
                g.name,
                g.priority,
                g.environment,
                g.access,
                frozenset(selected[g.id]),
                frozenset(teams[t] for t in reach.group_teams.get(g.id, ())),
                group_variables[g.id],
            )
            for g in reach.groups
        },
    )


def _opener(keep: bool) -> Callable[[Entry[Ciphertext]], str]:
    def open_(entry: Entry[Ciphertext]) -> str:
        table, row = entry.row or ("?", None)
        try:
            return crypto.decrypt(entry.value, table=table, row=row, cache=True, keep=keep)
        except crypto.DecryptionError:
            # Compared and shown as what it is, so that the change that repairs it can be made.
            return crypto.Undecryptable(table, "value", row=row).describe()

    return open_


def opened(world: World[Ciphertext], *, committed: bool = True) -> World[str]:
    """The world with its values decrypted, for the impact preview to compare (the preview
    never prints a secret); a value no key opens reads "cannot be decrypted (key missing)".
    committed=False for a state that may be rolled back (what a save being previewed
    wrote): its plaintexts are not kept in this process's cache (orgenv.crypto.plaintexts)."""
    return world.opened(_opener(committed))


def why_name(project: Project, name: str) -> Why:
    """Why NAME reaches the project or not (orgenv.resolution.why), from the organization as
    it is now; no value is decrypted."""
    world = load_world(project.organization)
    return explain_name(world, project.organization.slug, project.slug, name)
