"""The read-only panels of the group and project pages.

Reads only, in a constant number of queries whatever the number of projects, teams and
groups; reach comes from orgenv.selectors.reach, so the panels never disagree with what
runners receive.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from orgenv.audit.censor import MASK
from orgenv.models import Project, ProjectVariable, Variable, VariableGroup
from orgenv.resolution import Reach
from orgenv.selectors.layers import ProjectLayers, load_layers, reveal_for_display
from orgenv.selectors.reach import load_reach


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


def group_panels(group: VariableGroup) -> GroupPanels:
    """Which projects the group reaches (how), which the environment guard skips, and its
    conflicts: another group of the same priority defining a name it defines, reaching the
    same project. Seven queries: the names of same-priority groups, the reach loader's five,
    the project overrides."""
    names_by_group: dict[int, set[str]] = defaultdict(set)
    for gid, name in Variable.objects.filter(
        group__organization_id=group.organization_id, group__priority=group.priority
    ).values_list("group_id", "name"):
        names_by_group[gid].add(name)
    names = names_by_group.pop(group.pk, set())
    rival_names = {gid: shared for gid, n in names_by_group.items() if (shared := n & names)}
    reach = load_reach([group.organization_id], group_ids=[group.pk, *rival_names])
    refs = {g.id: g for g in reach.groups}

    def rows(gid: int) -> list[ProjectReach]:
        return [
            ProjectReach(p.id, p.slug, p.environment, reach.reach(refs[gid], p))
            for p in reach.projects
        ]

    panels = GroupPanels()
    for row in rows(group.pk):
        if row.reach.reaches:
            panels.reached.append(row)
        elif row.reach.skipped_because.startswith("environment guard"):
            panels.skipped.append(row)

    reached_ids = {row.project_id for row in panels.reached}
    clashes = []
    for gid in sorted(rival_names, key=lambda gid: refs[gid].name):
        for row in rows(gid):
            if row.project_id in reached_ids and row.reach.reaches:
                clashes += [(row, name, refs[gid].name) for name in sorted(rival_names[gid])]
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
