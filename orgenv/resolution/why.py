"""Why a name reaches a project, or why not, and what would make it reach — pure.

Every definition of NAME in the organization is accounted for with the rule that decided its
fate: not granted, skipped by the environment guard, lower priority, lost an equal-priority
conflict (to a named group), overridden by the project, or delivered. When nothing defines
NAME, names that nearly match (a case difference, a typo of one or two letters) are offered.
The answer ends with the admin step that would make NAME reach the project. It never holds a
value: the world may carry tokens or nothing at all in place of values.
"""

from __future__ import annotations

from dataclasses import dataclass

from .impact import GroupState, ProjectState, World, reach, resolve_project_in
from .rules import PROJECT_SOURCE, group_source

DELIVERED = "delivered"
NOT_GRANTED = "not granted"
GUARD = "environment guard"
LOWER_PRIORITY = "lower priority"
LOST_CONFLICT = "lost a conflict"
OVERRIDDEN = "overridden by the project"


@dataclass(frozen=True)
class Cause:
    source: str  # group:<name> or project
    rule: str  # one of the constants above
    text: str
    detail: str = ""  # whom the group is granted to: for admins only (names other projects)

    def shown(self, *, admin: bool) -> str:
        return f"{self.text} {self.detail}" if admin and self.detail else self.text

    def as_dict(self, *, admin: bool) -> dict[str, str]:
        return {"source": self.source, "rule": self.rule, "text": self.shown(admin=admin)}


@dataclass(frozen=True)
class Why:
    organization: str
    project: str
    name: str
    reaches: bool
    source: str | None  # where the project finally gets NAME from
    is_secret: bool = False
    causes: tuple[Cause, ...] = ()
    near_misses: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # what an admin would do; empty when NAME reaches

    def verdict(self) -> str:
        if self.reaches:
            kind = " (secret)" if self.is_secret else ""
            return f"{self.project} gets {self.name}{kind} from {self.source}."
        return f"{self.name} does not reach {self.project}."

    def steps_for(self, *, admin: bool) -> list[str]:
        """The steps as an admin does them, or as a member asks for them."""
        if admin:
            return [s[0].upper() + s[1:] + "." for s in self.steps]
        return [f"Ask an admin of {self.organization} to {s}." for s in self.steps]

    def lines(self, *, admin: bool = True) -> list[str]:
        out = [f"Why {self.name} in {self.organization}/{self.project}:"]
        out += [f"  {c.shown(admin=admin)}" for c in self.causes]
        if self.near_misses:
            out.append("  Similar names: " + "; ".join(self.near_misses) + ".")
        out.append(f"Result: {self.verdict()}")
        steps = self.steps_for(admin=admin)
        if steps:
            out.append("What to do:")
            out += [f"  {s}" for s in steps]
        return out

    def as_dict(self, *, admin: bool) -> dict:
        return {
            "organization": self.organization,
            "project": self.project,
            "name": self.name,
            "reaches": self.reaches,
            "source": self.source,
            "secret": self.is_secret,
            "causes": [c.as_dict(admin=admin) for c in self.causes],
            "near_misses": list(self.near_misses),
            "verdict": self.verdict(),
            "what_to_do": self.steps_for(admin=admin),
        }


def _label(environment: str) -> str:
    return repr(environment) if environment else "(no environment)"


def _grants(group: GroupState) -> str:
    if group.access == "all":
        return "all projects"
    parts = []
    if group.projects:
        parts.append("projects " + ", ".join(sorted(group.projects)))
    if group.teams:
        parts.append("teams " + ", ".join(sorted(group.teams)))
    return "; ".join(parts) or "no project or team"


def _group_cause(
    world: World, group: GroupState, project: ProjectState, name: str, winner: str | None
) -> tuple[Cause, list[str]]:
    """How one group's definition of NAME fares, and the admin step that would fix it."""
    source, p = group_source(group.name), project.slug
    defines = f"Group {group.name} (priority {group.priority}) defines {name}"
    guarded = bool(group.environment) and group.environment != project.environment
    result = reach(group, project)
    if not result.reaches and not guarded:
        text = f"{defines} but is not granted to {p}."
        detail = f"It is granted to {_grants(group)}."
        return Cause(source, NOT_GRANTED, text, detail), [
            f"grant group {group.name} to project {p}"
        ]
    if not result.reaches:
        labels = (
            f"the group is labelled {_label(group.environment)}, {p} is labelled "
            f"{_label(project.environment)}"
        )
        if result.skipped_because.startswith("environment"):
            text = f"{defines} but the environment guard skips it: {labels}."
        else:
            text = (
                f"{defines} but is not granted to {p}, and the environment guard would skip "
                f"it anyway: {labels}."
            )
        return Cause(source, GUARD, text), [
            f"define {name} in a group labelled {_label(project.environment)} (or without a "
            f"label) that reaches {p}, or as a variable of project {p}"
        ]
    if winner == source:
        return Cause(source, DELIVERED, f"{defines} and reaches {p} ({result.how}): it wins."), []
    if winner == PROJECT_SOURCE:
        text = f"{defines} and reaches {p}, but the project's own {name} overrides it."
        return Cause(source, OVERRIDDEN, text), []
    rival = world.groups[winner.removeprefix("group:")]
    if rival.priority > group.priority:
        text = (
            f"{defines} and reaches {p}, but has a lower priority than group {rival.name} "
            f"(priority {rival.priority}), which wins."
        )
        return Cause(source, LOWER_PRIORITY, text), []
    text = (
        f"{defines} and reaches {p}, but lost an equal-priority conflict to group "
        f"{rival.name} (the group name that sorts first wins)."
    )
    return Cause(source, LOST_CONFLICT, text), []


def _distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions (DATABSE_URL is one step away)."""
    previous2: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            best = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if previous2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, previous2[j - 2] + 1)
            row.append(best)
        previous2, previous = previous, row
    return previous[-1]


def _near_misses(world: World, project: ProjectState, name: str) -> tuple[str, ...]:
    where: dict[str, list[str]] = {}
    for g in sorted(world.groups.values(), key=lambda g: g.name):
        for other in g.variables:
            where.setdefault(other, []).append(f"group {g.name}")
    for other in project.variables:
        where.setdefault(other, []).append(f"project {project.slug}")
    limit = 1 if len(name) <= 4 else 2
    close = [
        other
        for other in where
        if other != name
        and (other.lower() == name.lower() or _distance(other.upper(), name.upper()) <= limit)
    ]
    return tuple(f"{other} (in {', '.join(where[other])})" for other in sorted(close))


def explain_name(world: World, organization: str, project_slug: str, name: str) -> Why:
    """Why `name` reaches project `project_slug` of `world`, or why not."""
    project = world.projects[project_slug]
    resolved = resolve_project_in(world, project).variables.get(name)
    winner = resolved.source if resolved else None
    causes: list[Cause] = []
    steps: list[str] = []
    definers = sorted(
        (g for g in world.groups.values() if name in g.variables),
        key=lambda g: (-g.priority, g.name),
    )
    for group in definers:
        cause, todo = _group_cause(world, group, project, name, winner)
        causes.append(cause)
        steps += [t for t in todo if t not in steps]
    if name in project.variables:
        causes.append(
            Cause(
                PROJECT_SOURCE,
                DELIVERED,
                f"Project {project_slug} defines {name} itself, which overrides every group.",
            )
        )
    near: tuple[str, ...] = ()
    if not causes:
        causes.append(
            Cause(
                "",
                "not defined",
                f"No group of {organization} defines {name}, and project {project_slug} does "
                "not either.",
            )
        )
        near = _near_misses(world, project, name)
        steps.append(
            f"add {name} to a group that reaches project {project_slug}, or as a variable of "
            f"project {project_slug}"
        )
    if resolved is not None:
        steps = []
    return Why(
        organization,
        project_slug,
        name,
        resolved is not None,
        winner,
        bool(resolved and resolved.is_secret),
        tuple(causes),
        near,
        tuple(steps),
    )
