"""Impact preview, pure: what a proposed change does to the effective environment of every
project of an organization, before it is made.

An organization is a `World` of plain states (projects and groups with their labels, grants
and variables); a `Change` replaces some of those states (a group or project as it would be
after the save, or None for a deletion). `preview(world, change)` resolves every project
before and after with the same rules as a live resolution (orgenv.resolution.rules) and
returns the difference: names added, removed, changed (value, secret flag) or coming from
another source, and conflicts appearing or disappearing.

Values are opaque and compared with ==, so a world is generic in its value type: the
loader (orgenv.selectors.reach.load_world) gives a `World[Ciphertext]`, and only
`World.opened` turns it into a `World[str]` of plaintexts for the preview to compare (the
comparison never leaves this module). Rendering never prints a value that is secret on
either side of the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from .rules import (
    PROJECT_SOURCE,
    REACH_SELECTED,
    Conflict,
    Definition,
    GroupLayer,
    Reach,
    Resolution,
    Resolved,
    group_reach,
    group_source,
    resolve,
)

ADDED, REMOVED, CHANGED, SOURCE_CHANGED = "added", "removed", "changed", "source changed"
VALUE_CHANGED = "value changed"  # how a secret's change reads, everywhere


V = TypeVar("V")  # what a world holds as values: Ciphertext as loaded, str once opened
W = TypeVar("W")


class Entry(NamedTuple, Generic[V]):
    """A variable as a group or a project holds it; `row` is (table, id) for a stored one."""

    value: V
    is_secret: bool = False
    row: tuple[str, int] | None = None


def _opened(
    variables: Mapping[str, Entry[V]], open_: Callable[[Entry[V]], W]
) -> dict[str, Entry[W]]:
    return {name: Entry(open_(e), e.is_secret, e.row) for name, e in variables.items()}


@dataclass(frozen=True)
class GroupState(Generic[V]):
    name: str
    priority: int = 0
    environment: str = ""
    access: str = REACH_SELECTED
    projects: frozenset[str] = frozenset()  # project slugs selected directly
    teams: frozenset[str] = frozenset()  # team slugs granted
    variables: Mapping[str, Entry[V]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectState(Generic[V]):
    slug: str
    environment: str = ""
    teams: frozenset[str] = frozenset()  # the teams the project is in
    variables: Mapping[str, Entry[V]] = field(default_factory=dict)


@dataclass(frozen=True)
class World(Generic[V]):
    """One organization: projects by slug, groups by name."""

    projects: Mapping[str, ProjectState[V]]
    groups: Mapping[str, GroupState[V]]

    def opened(self, open_: Callable[[Entry[V]], W]) -> World[W]:
        """The same world with every value replaced by `open_(entry)` (a decryption)."""
        return World(
            {
                slug: ProjectState(p.slug, p.environment, p.teams, _opened(p.variables, open_))
                for slug, p in self.projects.items()
            },
            {
                name: GroupState(
                    g.name,
                    g.priority,
                    g.environment,
                    g.access,
                    g.projects,
                    g.teams,
                    _opened(g.variables, open_),
                )
                for name, g in self.groups.items()
            },
        )

    def changed(self, change: Change) -> World:
        """The world after `change` (a renamed group is keyed by its old name in the change)."""
        groups = dict(self.groups)
        for key, group in change.groups.items():
            groups.pop(key, None)
            if group is not None:
                groups[group.name] = group
        projects = dict(self.projects)
        for key, project in change.projects.items():
            projects.pop(key, None)
            if project is not None:
                projects[project.slug] = project
        return World(projects, groups)


@dataclass(frozen=True)
class Change:
    """Groups and projects as they would be after a save, keyed by their current name or
    slug; None deletes."""

    groups: Mapping[str, GroupState | None] = field(default_factory=dict)
    projects: Mapping[str, ProjectState | None] = field(default_factory=dict)


def reach(group: GroupState, project: ProjectState) -> Reach:
    return group_reach(
        group_environment=group.environment,
        access=group.access,
        selected=project.slug in group.projects,
        via_team=bool(group.teams & project.teams),
        project_environment=project.environment,
    )


def _definitions(variables: Mapping[str, Entry], source: str, priority: int) -> list[Definition]:
    return [
        Definition(name, entry.value, entry.is_secret, source, priority)
        for name, entry in sorted(variables.items())
    ]


def resolve_project_in(world: World, project: ProjectState) -> Resolution:
    layers = [
        GroupLayer(g.name, g.priority, _definitions(g.variables, group_source(g.name), g.priority))
        for g in world.groups.values()
        if reach(g, project).reaches
    ]
    return resolve(layers, _definitions(project.variables, PROJECT_SOURCE, 0))


def resolve_world(world: World) -> dict[str, Resolution]:
    """The effective environment of every project of the world, by slug."""
    return {slug: resolve_project_in(world, p) for slug, p in sorted(world.projects.items())}


@dataclass(frozen=True)
class VariableChange:
    name: str
    kind: str  # ADDED, REMOVED, CHANGED or SOURCE_CHANGED
    before: Resolved | None = None
    after: Resolved | None = None

    @property
    def secret(self) -> bool:
        """Secret on either side: its values are never shown."""
        return bool(
            (self.before and self.before.is_secret) or (self.after and self.after.is_secret)
        )

    def describe(self) -> str:
        """One line, never a secret value: `NAME: 'a' → 'b' (group:x → project)`."""
        if self.kind == ADDED:
            return f"{self.name} added {self.detail()}"
        if self.kind == REMOVED:
            return f"{self.name} removed ({self.detail()})"
        return f"{self.name}: {self.detail()}"

    def detail(self, *, values: bool = True) -> str:
        """What changed, without the name: `from group:x (secret)`, `'a' → 'b'`, `value
        changed, source group:x → project`; never a secret value, and no value at all with
        values=False (a change request's page)."""
        before, after = self.before, self.after
        if self.kind == ADDED:
            return f"from {after.source}" + (" (secret)" if self.secret else "")
        if self.kind == REMOVED:
            return f"was from {before.source}"
        parts = []
        if before.value != after.value:
            parts.append(
                VALUE_CHANGED
                if self.secret or not values
                else f"{_short(before.value)} → {_short(after.value)}"
            )
        if before.is_secret != after.is_secret:
            parts.append("now secret" if after.is_secret else "no longer secret")
        if before.source != after.source:
            parts.append(f"source {before.source} → {after.source}")
        return ", ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…'"


@dataclass(frozen=True)
class ProjectImpact:
    project: str
    variables: tuple[VariableChange, ...]
    conflicts_appearing: tuple[Conflict, ...] = ()
    conflicts_disappearing: tuple[Conflict, ...] = ()

    def lines(self) -> list[str]:
        out = [f"  {v.kind}: {v.describe()}" for v in self.variables]
        out += [f"  new conflict: {_conflict(c)}" for c in self.conflicts_appearing]
        out += [f"  conflict gone: {_conflict(c)}" for c in self.conflicts_disappearing]
        return out


def _conflict(c: Conflict) -> str:
    return f"{c.name}: {conflict_detail(c)}"


def conflict_detail(c: Conflict) -> str:
    return f"{c.winner} wins over {', '.join(c.shadowed)} (same priority)"


@dataclass(frozen=True)
class Impact:
    projects: tuple[ProjectImpact, ...]

    @property
    def count(self) -> int:
        return len(self.projects)

    def __bool__(self) -> bool:
        return bool(self.projects)

    def headline(self) -> str:
        n = self.count
        return f"This change affects {n} project{'' if n == 1 else 's'}."

    def lines(self) -> list[str]:
        """The plan as text: one heading per affected project, one line per difference."""
        out = []
        for p in self.projects:
            out.append(f"{p.project}:")
            out += p.lines()
        return out


def _variable_changes(before: Resolution, after: Resolution) -> list[VariableChange]:
    changes = []
    for name in sorted(before.variables.keys() | after.variables.keys()):
        old, new = before.variables.get(name), after.variables.get(name)
        if old is None:
            changes.append(VariableChange(name, ADDED, None, new))
        elif new is None:
            changes.append(VariableChange(name, REMOVED, old, None))
        elif old.value != new.value or old.is_secret != new.is_secret:
            changes.append(VariableChange(name, CHANGED, old, new))
        elif old.source != new.source:
            changes.append(VariableChange(name, SOURCE_CHANGED, old, new))
    return changes


def difference(before: Mapping[str, Resolution], after: Mapping[str, Resolution]) -> Impact:
    """resolve(after) − resolve(before), project by project (a project missing on one side
    has an empty environment there)."""
    empty = Resolution({}, [])
    projects = []
    for slug in sorted(before.keys() | after.keys()):
        old, new = before.get(slug, empty), after.get(slug, empty)
        variables = _variable_changes(old, new)
        appearing = _conflicts_minus(new.conflicts, old.conflicts)
        disappearing = _conflicts_minus(old.conflicts, new.conflicts)
        if variables or appearing or disappearing:
            projects.append(ProjectImpact(slug, tuple(variables), appearing, disappearing))
    return Impact(tuple(projects))


def _conflicts_minus(a: Iterable[Conflict], b: Iterable[Conflict]) -> tuple[Conflict, ...]:
    known = set(b)
    return tuple(c for c in a if c not in known)


def preview(world: World, change: Change) -> Impact:
    """What `change` would do to every project of `world`."""
    return difference(resolve_world(world), resolve_world(world.changed(change)))
