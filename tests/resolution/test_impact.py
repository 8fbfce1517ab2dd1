"""The impact preview without a database: every kind of change against every rule of
resolution (reach by access, selection and team; the environment guard; priority; the
equal-priority conflict; the project override)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orgenv.resolution.impact import (
    Change,
    Entry,
    GroupState,
    ProjectState,
    World,
    preview,
)


def entries(**values: str) -> dict[str, Entry]:
    return {k: Entry(v) for k, v in values.items()}


API = ProjectState("api", "production", frozenset({"ml"}), entries(P="p"))
WEB = ProjectState("web", "staging")
DEV = ProjectState("dev")
SHARED = GroupState("shared", access="all", variables=entries(X="1", Y="shared"))
PROD = GroupState(
    "prod",
    environment="production",
    projects=frozenset({"api"}),
    variables={"DB": Entry("s1", True)},
)
TEAM = GroupState("team", teams=frozenset({"ml"}), variables=entries(W="w"))
ALPHA = GroupState("alpha", projects=frozenset({"api", "web"}), variables=entries(Y="alpha"))

WORLD = World(
    {p.slug: p for p in (API, WEB, DEV)},
    {g.name: g for g in (SHARED, PROD, TEAM, ALPHA)},
)


def group(g: GroupState, **fields) -> Change:
    return Change(groups={g.name: replace(g, **fields)})


def project(p: ProjectState, **fields) -> Change:
    return Change(projects={p.slug: replace(p, **fields)})


Y_CONFLICT = "Y: group:alpha wins over group:shared (same priority)"

CASES = {
    "a public value changes where the group reaches (access all)": (
        group(SHARED, variables=entries(X="2", Y="shared")),
        {p: ["  changed: X: '1' → '2'"] for p in ("api", "dev", "web")},
    ),
    "a secret value change never shows a value": (
        group(PROD, variables={"DB": Entry("s2", True)}),
        {"api": ["  changed: DB: value changed"]},
    ),
    "a secret flag turned on": (
        group(SHARED, variables={"X": Entry("1", True), "Y": Entry("shared")}),
        {p: ["  changed: X: now secret"] for p in ("api", "dev", "web")},
    ),
    "a variable added reaches through a team grant only": (
        group(TEAM, variables=entries(W="w", V="v")),
        {"api": ["  added: V added from group:team"]},
    ),
    "a variable deleted": (
        group(SHARED, variables=entries(Y="shared")),
        {p: ["  removed: X removed (was from group:shared)"] for p in ("api", "dev", "web")},
    ),
    "a group deleted": (
        Change(groups={"prod": None}),
        {"api": ["  removed: DB removed (was from group:prod)"]},
    ),
    "a project selected": (
        group(TEAM, projects=frozenset({"web"})),
        {"web": ["  added: W added from group:team"]},
    ),
    "a team grant revoked": (
        group(TEAM, teams=frozenset()),
        {"api": ["  removed: W removed (was from group:team)"]},
    ),
    "a selection the environment guard skips changes nothing": (
        group(PROD, projects=frozenset({"api", "web"})),
        {},
    ),
    "a group labelled: the guard skips projects of another label": (
        group(SHARED, environment="staging"),
        {
            "api": [
                "  removed: X removed (was from group:shared)",
                f"  conflict gone: {Y_CONFLICT}",
            ],
            "dev": [
                "  removed: X removed (was from group:shared)",
                "  removed: Y removed (was from group:shared)",
            ],
        },
    ),
    "a priority raised: the other group now wins, no conflict left": (
        group(SHARED, priority=5),
        {
            p: [
                "  changed: Y: 'alpha' → 'shared', source group:alpha → group:shared",
                f"  conflict gone: {Y_CONFLICT}",
            ]
            for p in ("api", "web")
        },
    ),
    "an equal-priority group whose name sorts first wins a new conflict": (
        Change(groups={"aaa": GroupState("aaa", access="all", variables=entries(X="a"))}),
        {
            p: [
                "  changed: X: '1' → 'a', source group:shared → group:aaa",
                "  new conflict: X: group:aaa wins over group:shared (same priority)",
            ]
            for p in ("api", "dev", "web")
        },
    ),
    "the same value from another source is a source change": (
        Change(groups={"top": GroupState("top", 1, access="all", variables=entries(X="1"))}),
        {
            p: ["  source changed: X: source group:shared → group:top"]
            for p in ("api", "dev", "web")
        },
    ),
    "a renamed group sorts after its rival: the conflict changes winner": (
        Change(groups={"alpha": replace(ALPHA, name="zeta")}),
        {
            p: [
                "  changed: Y: 'alpha' → 'shared', source group:alpha → group:shared",
                "  new conflict: Y: group:shared wins over group:zeta (same priority)",
                f"  conflict gone: {Y_CONFLICT}",
            ]
            for p in ("api", "web")
        },
    ),
    "a project variable overrides a group and settles its conflict": (
        project(API, variables=entries(P="p", Y="mine")),
        {
            "api": [
                "  changed: Y: 'alpha' → 'mine', source group:alpha → project",
                f"  conflict gone: {Y_CONFLICT}",
            ]
        },
    ),
    "a project override removed: the group value comes back": (
        project(API, variables={}),
        {"api": ["  removed: P removed (was from project)"]},
    ),
    "a project relabelled leaves a labelled group behind": (
        project(API, environment="staging"),
        {"api": ["  removed: DB removed (was from group:prod)"]},
    ),
    "a project leaving a team loses the team's groups": (
        project(API, teams=frozenset()),
        {"api": ["  removed: W removed (was from group:team)"]},
    ),
    "a new project gets what reaches it": (
        Change(projects={"new": ProjectState("new", "staging")}),
        {
            "new": [
                "  added: X added from group:shared",
                "  added: Y added from group:shared",
            ]
        },
    ),
    "nothing changed": (group(SHARED), {}),
}


@pytest.mark.parametrize(("change", "expected"), CASES.values(), ids=CASES.keys())
def test_preview(change, expected):
    impact = preview(WORLD, change)
    assert {p.project: p.lines() for p in impact.projects} == expected
    assert impact.count == len(expected)


def test_a_secret_value_never_appears_in_the_plan_whichever_side_is_secret():
    made_public = group(PROD, variables={"DB": Entry("s2", False)})
    made_secret = group(SHARED, variables={"X": Entry("hush", True), "Y": Entry("shared")})
    for change in (made_public, made_secret):
        text = "\n".join(preview(WORLD, change).lines())
        assert "s1" not in text and "s2" not in text and "hush" not in text
        assert "value changed" in text


def test_the_headline_counts_projects():
    assert preview(WORLD, group(SHARED, priority=5)).headline() == (
        "This change affects 2 projects."
    )
    assert preview(WORLD, Change(groups={"prod": None})).headline() == (
        "This change affects 1 project."
    )
