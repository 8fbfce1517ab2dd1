"""The read-only panels of the group and project pages.

Reads only, as tuples, in a constant number of queries whatever the number of projects,
teams and groups; the reach rule itself is orgenv.resolution.group_reach, the one used by
resolution, so the panels can never disagree with what runners receive.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from orgenv.audit.censor import MASK
from orgenv.models import Project, ProjectVariable, Variable, VariableGroup
from orgenv.resolution import Reach, group_reach
from orgenv.selectors.layers import ProjectLayers, load_layers, reveal_for_display


@dataclass(frozen=True)
class ProjectReach:
    project_id: int
    slug: str
    environment: str
    reach: Reach


@dataclass(frozen=True)
class GroupConflict:
    project: str
    name: str
    other_group: str
    winner: str
    settled_by_project: bool


@dataclass
class GroupPanels:
    reached: list[ProjectReach] = field(default_factory=list)
    skipped: list[ProjectReach] = field(default_factory=list)  # by the environment guard
    conflicts: list[GroupConflict] = field(default_factory=list)


def _reaches(
    groups: list[tuple[int, str, str]], organization_id: int
) -> dict[int, list[ProjectReach]]:
    """For each (id, access, environment) group, every project of the organization with how
    the group reaches it or why not. Four queries."""
    projects = list(
        Project.objects.filter(organization_id=organization_id)
        .order_by("slug")
        .values_list("id", "slug", "environment")
    )
    team_projects: dict[int, set[int]] = defaultdict(set)
    for team_id, project_id in Project.teams.through.objects.filter(
        project__organization_id=organization_id
    ).values_list("team_id", "project_id"):
        team_projects[team_id].add(project_id)
    ids = [gid for gid, _, _ in groups]
    selected: dict[int, set[int]] = defaultdict(set)
    for gid, pid in VariableGroup.projects.through.objects.filter(
        variablegroup_id__in=ids
    ).values_list("variablegroup_id", "project_id"):
        selected[gid].add(pid)
    via_team: dict[int, set[int]] = defaultdict(set)
    for gid, team_id in VariableGroup.teams.through.objects.filter(
        variablegroup_id__in=ids
    ).values_list("variablegroup_id", "team_id"):
        via_team[gid] |= team_projects[team_id]
    return {
        gid: [
            ProjectReach(
                pid,
                slug,
                env,
                group_reach(
                    group_environment=group_env,
                    access=access,
                    selected=pid in selected[gid],
                    via_team=pid in via_team[gid],
                    project_environment=env,
                ),
            )
            for pid, slug, env in projects
        ]
        for gid, access, group_env in groups
    }


def group_panels(group: VariableGroup) -> GroupPanels:
    """Which projects the group reaches (how), which the environment guard skips, and its
    conflicts: another group of the same priority defining a name it defines, reaching the
    same project. Seven queries."""
    names = set(group.variables.values_list("name", flat=True))
    rivals: dict[int, tuple[str, str, str]] = {}
    rival_names: dict[int, set[str]] = defaultdict(set)
    if names:
        rows = (
            Variable.objects.filter(
                group__organization_id=group.organization_id,
                group__priority=group.priority,
                name__in=names,
            )
            .exclude(group_id=group.pk)
            .values_list("group_id", "group__name", "group__access", "group__environment", "name")
        )
        for gid, gname, access, env, name in rows:
            rivals[gid] = (gname, access, env)
            rival_names[gid].add(name)
    reaches = _reaches(
        [(group.pk, group.access, group.environment)]
        + [(gid, access, env) for gid, (_, access, env) in rivals.items()],
        group.organization_id,
    )
    panels = GroupPanels()
    for row in reaches[group.pk]:
        if row.reach.reaches:
            panels.reached.append(row)
        elif row.reach.skipped_because.startswith("environment guard"):
            panels.skipped.append(row)

    reached_ids = {row.project_id for row in panels.reached}
    clashes = []
    for gid, (gname, _, _) in sorted(rivals.items(), key=lambda item: item[1][0]):
        for row in reaches[gid]:
            if row.project_id in reached_ids and row.reach.reaches:
                clashes += [(row, name, gname) for name in sorted(rival_names[gid])]
    overridden = set()
    if clashes:
        overridden = set(
            ProjectVariable.objects.filter(
                project_id__in={row.project_id for row, _, _ in clashes},
                name__in={name for _, name, _ in clashes},
            ).values_list("project_id", "name")
        )
    for row, name, gname in sorted(clashes, key=lambda c: (c[0].slug, c[1], c[2])):
        panels.conflicts.append(
            GroupConflict(
                row.slug,
                name,
                gname,
                winner=min(gname, group.name),
                settled_by_project=(row.project_id, name) in overridden,
            )
        )
    return panels


@dataclass(frozen=True)
class EffectiveRow:
    name: str
    value: str
    is_secret: bool
    source: str
    shadowed: list[str]


def effective_environment(project: Project) -> tuple[list[EffectiveRow], ProjectLayers]:
    """The project's resolved variables for the admin: public values in clear, secrets as
    the mask (and never decrypted for it), with what each one shadows."""
    layers = load_layers(project)
    rows = [
        EffectiveRow(
            resolved.name,
            MASK if resolved.is_secret else reveal_for_display(resolved),
            resolved.is_secret,
            resolved.source,
            [d.source for d in resolved.shadowed],
        )
        for resolved in layers.resolution.variables.values()
    ]
    return rows, layers
