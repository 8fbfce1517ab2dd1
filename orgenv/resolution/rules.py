"""Precedence, pure: plain data in, resolved variables with sources and conflicts out.

No Django import on purpose: these rules are the heart of orgenv and are tested table by
table without a database (tests/resolution/test_rules.py). docs/concepts.md "Resolution",
lowest precedence first:

1. variables of every group that reaches the project, in ascending priority; among groups of
   equal priority defining the same name, the group whose name sorts first wins and the clash
   is a conflict;
2. project variables, which override any group variable of the same name.

Values are opaque here: the loader may pass ciphertext and decrypt only the winners.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

PROJECT_SOURCE = "project"

# How a group reaches a project (or why it does not).
REACH_ALL = "all"
REACH_SELECTED = "selected"
REACH_TEAM = "team"


def group_source(name: str) -> str:
    return f"group:{name}"


class Definition(NamedTuple):
    """One definition of a name: in a group (source "group:<name>") or on the project.

    A NamedTuple rather than a frozen dataclass: equally immutable, and about three times
    cheaper to create, which counts at a thousand definitions per request (bench/resolve.py).
    """

    name: str
    value: Any
    is_secret: bool
    source: str
    priority: int = 0
    ref: Any = None  # the row id, for links and ETags


@dataclass(frozen=True)
class GroupLayer:
    name: str
    priority: int
    definitions: Sequence[Definition]


@dataclass
class Resolved:
    name: str
    value: Any
    is_secret: bool
    source: str
    ref: Any = None
    shadowed: list[Definition] = field(default_factory=list)


@dataclass(frozen=True)
class Conflict:
    """Groups of equal priority defining one name; `winner` sorts first by group name."""

    name: str
    winner: str
    shadowed: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "winner": self.winner, "shadowed": list(self.shadowed)}


@dataclass
class Resolution:
    variables: dict[str, Resolved]
    conflicts: list[Conflict]

    @property
    def secrets(self) -> list[str]:
        return sorted(n for n, r in self.variables.items() if r.is_secret)

    @property
    def sources(self) -> dict[str, str]:
        return {n: r.source for n, r in sorted(self.variables.items())}

    def overrides(self) -> list[Resolved]:
        return [r for r in self.variables.values() if r.shadowed]


@dataclass(frozen=True)
class Reach:
    """Whether a group reaches a project: `how` is all/selected/team, or None with a reason."""

    how: str | None
    skipped_because: str = ""

    @property
    def reaches(self) -> bool:
        return self.how is not None


def group_reach(
    *,
    group_environment: str,
    access: str,
    selected: bool,
    via_team: bool,
    project_environment: str,
) -> Reach:
    """The reach rule with the environment guard: a labelled group reaches only projects with
    the same label, whatever made it eligible."""
    if access == REACH_ALL:
        how = REACH_ALL
    elif selected:
        how = REACH_SELECTED
    elif via_team:
        how = REACH_TEAM
    else:
        return Reach(None, "not granted")
    if group_environment and group_environment != project_environment:
        return Reach(
            None,
            f"environment guard: group is {group_environment!r}, "
            f"project is {project_environment or '(no environment)'!r}",
        )
    return Reach(how)


def resolve(groups: Iterable[GroupLayer], project: Iterable[Definition]) -> Resolution:
    """Resolve the layers of one project. Groups are those that reach it (see group_reach)."""
    # Highest precedence first: higher priority, then the name that sorts first.
    ordered = sorted(groups, key=lambda g: (-g.priority, g.name))
    candidates: dict[str, list[Definition]] = {}
    for layer in ordered:
        for definition in layer.definitions:
            candidates.setdefault(definition.name, []).append(definition)

    variables: dict[str, Resolved] = {}
    conflicts: list[Conflict] = []
    for name, defs in candidates.items():
        winner, rest = defs[0], defs[1:]
        variables[name] = Resolved(
            name, winner.value, winner.is_secret, winner.source, winner.ref, list(rest)
        )
        if rest:  # most names have a single definition: skip the scan for them
            tied = tuple(d.source for d in rest if d.priority == winner.priority)
            if tied:
                conflicts.append(Conflict(name, winner.source, tied))

    for definition in project:
        shadowed = []
        previous = variables.get(definition.name)
        if previous is not None:
            shadowed = [
                Definition(
                    previous.name,
                    previous.value,
                    previous.is_secret,
                    previous.source,
                    ref=previous.ref,
                ),
                *previous.shadowed,
            ]
            # A project override settles the clash: there is no ambiguity left to report.
            conflicts = [c for c in conflicts if c.name != definition.name]
        variables[definition.name] = Resolved(
            definition.name,
            definition.value,
            definition.is_secret,
            PROJECT_SOURCE,
            definition.ref,
            shadowed,
        )

    return Resolution(dict(sorted(variables.items())), sorted(conflicts, key=lambda c: c.name))
