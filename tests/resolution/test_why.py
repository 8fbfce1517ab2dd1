"""Why NAME reaches a project or not, without a database: one test per cause."""

from __future__ import annotations

from orgenv.resolution.impact import Entry, GroupState, ProjectState, World
from orgenv.resolution.why import (
    DELIVERED,
    GUARD,
    LOST_CONFLICT,
    LOWER_PRIORITY,
    NOT_GRANTED,
    OVERRIDDEN,
    explain_name,
)

JOBS = ProjectState("jobs", "staging", frozenset({"ops"}))


def world(*groups: GroupState, project: ProjectState = JOBS) -> World:
    return World({project.slug: project}, {g.name: g for g in groups})


def defines(name: str, **fields) -> GroupState:
    return GroupState(name, variables={"KEY": Entry("v", True)}, **fields)


def test_nothing_defines_it_and_near_misses_are_offered():
    w = world(
        GroupState("db", access="all", variables={"DATABASE_URL": Entry("x")}),
        GroupState("other", variables={"key": Entry("x"), "UNRELATED": Entry("x")}),
    )
    why = explain_name(w, "acme", "jobs", "DATABSE_URL")
    assert not why.reaches
    assert (
        why.causes[0].text
        == "No group of acme defines DATABSE_URL, and project jobs does not either."
    )
    assert why.near_misses == ("DATABASE_URL (in group db)",)
    assert explain_name(w, "acme", "jobs", "KEY").near_misses == ("key (in group other)",)
    assert why.steps_for(admin=False) == [
        "Ask an admin of acme to add DATABSE_URL to a group that reaches project jobs, or as a "
        "variable of project jobs."
    ]


def test_a_group_defines_it_but_is_not_granted():
    why = explain_name(world(defines("ml", teams=frozenset({"ml"}))), "acme", "jobs", "KEY")
    assert [c.rule for c in why.causes] == [NOT_GRANTED]
    assert why.causes[0].shown(admin=True) == (
        "Group ml (priority 0) defines KEY but is not granted to jobs. It is granted to teams ml."
    )
    assert why.causes[0].shown(admin=False) == (
        "Group ml (priority 0) defines KEY but is not granted to jobs."
    )
    assert why.lines(admin=False)[-2:] == [
        "What to do:",
        "  Ask an admin of acme to grant group ml to project jobs.",
    ]
    assert why.steps_for(admin=True) == ["Grant group ml to project jobs."]


def test_granted_but_the_environment_guard_skips_it_naming_both_labels():
    why = explain_name(
        world(defines("prod", access="all", environment="production")), "acme", "jobs", "KEY"
    )
    assert [c.rule for c in why.causes] == [GUARD]
    assert "the group is labelled 'production', jobs is labelled 'staging'" in why.causes[0].text
    assert why.steps[0].startswith("define KEY in a group labelled 'staging'")


def test_lower_priority_names_the_winner():
    w = world(defines("low", access="all"), defines("high", access="all", priority=2))
    why = explain_name(w, "acme", "jobs", "KEY")
    assert why.reaches and why.source == "group:high" and why.is_secret
    assert [(c.source, c.rule) for c in why.causes] == [
        ("group:high", DELIVERED),
        ("group:low", LOWER_PRIORITY),
    ]
    assert "lower priority than group high (priority 2)" in why.causes[1].text
    assert why.steps == ()


def test_an_equal_priority_conflict_names_the_group_that_won():
    w = world(defines("zeta", access="all"), defines("alpha", teams=frozenset({"ops"})))
    why = explain_name(w, "acme", "jobs", "KEY")
    assert [(c.source, c.rule) for c in why.causes] == [
        ("group:alpha", DELIVERED),
        ("group:zeta", LOST_CONFLICT),
    ]
    assert "lost an equal-priority conflict to group alpha" in why.causes[1].text


def test_overridden_by_the_project():
    project = ProjectState("jobs", "staging", variables={"KEY": Entry("p")})
    why = explain_name(world(defines("all", access="all"), project=project), "acme", "jobs", "KEY")
    assert why.source == "project" and why.reaches
    assert [c.rule for c in why.causes] == [OVERRIDDEN, DELIVERED]
    assert why.verdict() == "jobs gets KEY from project."


def test_not_granted_and_guarded_says_both():
    why = explain_name(world(defines("prod", environment="production")), "acme", "jobs", "KEY")
    assert [c.rule for c in why.causes] == [GUARD]
    assert (
        "is not granted to jobs, and the environment guard would skip it anyway"
        in why.causes[0].text
    )
