"""Property: for random organizations and random changes, the pure preview computed from the
organization as loaded (selectors.reach.load_world) equals the difference between the real
resolutions (selectors.layers, against the database) after and before the change is made
through the services the admin and apply_config use."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from orgenv import services
from orgenv.models import Organization, Project, Team, VariableGroup
from orgenv.resolution.impact import (
    Change,
    Entry,
    GroupState,
    ProjectState,
    World,
    difference,
    preview,
    resolve_world,
)
from orgenv.selectors.layers import load_layers, reveal
from orgenv.selectors.reach import load_world, opened

LABELS = st.sampled_from(["", "production", "staging"])
TEAMS = ["ml", "ops"]
PROJECTS = ["api", "web", "job"]
names = st.sampled_from(["A", "B", "C", "a"])
variables = st.dictionaries(
    names, st.builds(Entry, st.sampled_from(["1", "2", "x y"]), st.booleans()), max_size=3
)


@st.composite
def project_states(draw, slug: str) -> ProjectState:
    return ProjectState(
        slug,
        draw(LABELS),
        frozenset(draw(st.lists(st.sampled_from(TEAMS), unique=True))),
        draw(variables),
    )


@st.composite
def group_states(draw, name: str, projects: dict[str, ProjectState]) -> GroupState:
    environment = draw(LABELS)
    # A labelled group may select only projects of its label (the guard refuses others).
    eligible = sorted(
        s for s, p in projects.items() if not environment or p.environment == environment
    )
    return GroupState(
        name,
        draw(st.integers(0, 1)),
        environment,
        draw(st.sampled_from(["all", "selected"])),
        frozenset(draw(st.lists(st.sampled_from(eligible), unique=True)) if eligible else ()),
        frozenset(draw(st.lists(st.sampled_from(TEAMS), unique=True))),
        draw(variables),
    )


@st.composite
def worlds_and_changes(draw) -> tuple[World, Change]:
    projects = {s: draw(project_states(s)) for s in PROJECTS}
    group_names = draw(st.lists(st.sampled_from(["g1", "g2", "g3", "g4"]), unique=True, max_size=4))
    groups = {n: draw(group_states(n, projects)) for n in group_names}
    world = World(projects, groups)
    kind = draw(st.sampled_from(["group", "new group", "delete group", "project"]))
    if kind == "group" and groups:
        name = draw(st.sampled_from(sorted(groups)))
        return world, Change(groups={name: draw(group_states(name, projects))})
    if kind == "delete group" and groups:
        return world, Change(groups={draw(st.sampled_from(sorted(groups))): None})
    if kind == "project":
        slug = draw(st.sampled_from(PROJECTS))
        new = draw(project_states(slug))
        # Relabelling a project that a labelled group selects is refused: keep the label then.
        if any(slug in g.projects and g.environment for g in groups.values()):
            new = replace(new, environment=projects[slug].environment)
        return world, Change(projects={slug: new})
    return world, Change(groups={"g5": draw(group_states("g5", projects))})


def write_group(org: Organization, state: GroupState, projects: dict, teams: dict) -> None:
    existing = VariableGroup.objects.filter(organization=org, name=state.name).first()
    if existing is not None:  # drop its selections first: a relabel must not meet old ones
        services.group_set_grants(group=existing, projects=[], prune=True)
    group, _ = services.group_set(
        organization=org,
        name=state.name,
        priority=state.priority,
        environment=state.environment,
        access=state.access,
    )
    services.group_set_grants(
        group=group,
        projects=[projects[s] for s in state.projects],
        teams=[teams[s] for s in state.teams],
        prune=True,
    )
    for name, entry in state.variables.items():
        services.variable_set(group=group, name=name, value=entry.value, is_secret=entry.is_secret)
    services.definitions_prune(queryset=group.variables.all(), keep=state.variables)


def write_project(org: Organization, state: ProjectState, teams: dict) -> Project:
    project, _ = services.project_set(
        organization=org,
        slug=state.slug,
        defaults={"name": state.slug},
        environment=state.environment,
    )
    project.teams.set([teams[s] for s in state.teams])
    for name, entry in state.variables.items():
        services.project_variable_set(
            project=project, name=name, value=entry.value, is_secret=entry.is_secret
        )
    services.definitions_prune(queryset=project.variables.all(), keep=state.variables)
    return project


def resolve_all(org: Organization) -> dict:
    """Every project's resolution from the database, winning values decrypted."""
    resolutions = {}
    for project in Project.objects.filter(organization=org):
        resolution = load_layers(project).resolution
        for resolved in resolution.variables.values():
            resolved.value = reveal(resolved)
        resolutions[project.slug] = resolution
    return resolutions


def shown(resolution) -> tuple:
    return (
        {n: (r.value, r.is_secret, r.source) for n, r in resolution.variables.items()},
        [c.as_dict() for c in resolution.conflicts],
    )


class Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=worlds_and_changes())
def test_preview_equals_the_difference_of_real_resolutions(case):
    world, change = case
    assume(change.groups or change.projects)
    try:
        with transaction.atomic():
            org = Organization.objects.create(slug="prop", name="prop")
            teams = {s: Team.objects.create(organization=org, slug=s) for s in TEAMS}
            projects = {s: write_project(org, p, teams) for s, p in world.projects.items()}
            for g in world.groups.values():
                write_group(org, g, projects, teams)

            loaded = opened(load_world(org))
            before = resolve_all(org)
            # The loaded world resolves exactly as the database does, project by project.
            pure = resolve_world(loaded)
            assert {s: shown(r) for s, r in pure.items()} == {
                s: shown(r) for s, r in before.items()
            }
            expected = preview(loaded, change)

            for name, state in change.groups.items():
                if state is None:
                    VariableGroup.objects.get(organization=org, name=name).delete()
                else:
                    write_group(org, state, projects, teams)
            for state in change.projects.values():
                write_project(org, state, teams)

            assert expected.lines() == difference(before, resolve_all(org)).lines()
            raise Rollback
    except Rollback:
        pass
