"""Which projects each group reaches, and how: the grants view of the audit pages.

Five queries for a whole organization (projects, groups, the two grant tables, the project
team links) plus one for the last resolution times; reach is decided by the same pure rule
as resolution (orgenv.resolution.group_reach), so this page never disagrees with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max

from orgenv.models import AuditEvent, Organization, Project, VariableGroup
from orgenv.resolution import Reach, group_reach


@dataclass
class GrantRow:
    project: Project
    last_resolution: datetime | None
    cells: list[Reach]  # one per group, in the order of GrantMatrix.groups

    @property
    def reaching(self) -> int:
        return sum(1 for c in self.cells if c.reaches)


@dataclass
class GrantMatrix:
    groups: list[VariableGroup]
    rows: list[GrantRow]


def grant_matrix(org: Organization) -> GrantMatrix:
    projects = list(Project.objects.filter(organization=org).order_by("slug"))
    groups = list(VariableGroup.objects.filter(organization=org).order_by("-priority", "name"))
    selected = set(
        VariableGroup.projects.through.objects.filter(variablegroup__organization=org).values_list(
            "variablegroup_id", "project_id"
        )
    )
    group_teams: dict[int, set[int]] = {}
    for gid, tid in VariableGroup.teams.through.objects.filter(
        variablegroup__organization=org
    ).values_list("variablegroup_id", "team_id"):
        group_teams.setdefault(gid, set()).add(tid)
    project_teams: dict[int, set[int]] = {}
    for pid, tid in Project.teams.through.objects.filter(project__organization=org).values_list(
        "project_id", "team_id"
    ):
        project_teams.setdefault(pid, set()).add(tid)
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
    rows = []
    for project in projects:
        cells = [
            group_reach(
                group_environment=g.environment,
                access=g.access,
                selected=(g.pk, project.pk) in selected,
                via_team=bool(group_teams.get(g.pk, set()) & project_teams.get(project.pk, set())),
                project_environment=project.environment,
            )
            for g in groups
        ]
        rows.append(GrantRow(project, last.get(project.pk), cells))
    return GrantMatrix(groups, rows)
