from __future__ import annotations

import pytest

from orgenv.crypto import Ciphertext
from orgenv.models import Project, ProjectVariable, Team
from orgenv.selectors.layers import load_layers, plaintext, reveal
from tests.conftest import make_group


def test_a_project_gets_groups_for_all_selected_and_through_a_team(world):
    team = Team.objects.create(organization=world.acme, slug="ml")
    world.web.teams.add(team)
    make_group(world.acme, "everyone", access="all", variables={"A": "1"})
    make_group(world.acme, "chosen", projects=[world.web], variables={"B": "2"})
    make_group(world.acme, "team", teams=[team], variables={"C": "3"})
    make_group(world.acme, "elsewhere", variables={"D": "4"})
    layers = load_layers(world.web)
    assert layers.resolution.sources == {
        "A": "group:everyone",
        "B": "group:chosen",
        "C": "group:team",
    }
    assert {g.name: g.reach.how for g in layers.groups} == {
        "chosen": "selected",
        "elsewhere": None,
        "everyone": "all",
        "team": "team",
    }


def test_a_labelled_group_skips_a_project_with_another_label(world):
    staging = Project.objects.create(
        organization=world.acme, slug="st", name="St", environment="staging"
    )
    make_group(
        world.acme, "prod", access="all", environment="production", secrets={"S": "prod-secret"}
    )
    assert load_layers(staging).resolution.variables == {}
    assert plaintext(load_layers(world.web)) == {"S": "prod-secret"}


def test_a_project_variable_overrides_and_keeps_what_it_shadowed(world):
    make_group(world.acme, "g", access="all", variables={"URL": "group-url"})
    ProjectVariable.objects.create(project=world.web, name="URL", value="project-url")
    resolved = load_layers(world.web).resolution.variables["URL"]
    assert (reveal(resolved), resolved.source) == ("project-url", "project")
    assert reveal(resolved.shadowed[0]) == "group-url"
    assert [d.source for d in resolved.shadowed] == ["group:g"]


def test_another_organizations_groups_never_reach_a_project(world):
    make_group(world.globex, "theirs", access="all", variables={"X": "globex"})
    assert load_layers(world.web).resolution.variables == {}


def test_the_fingerprint_changes_with_a_value_and_not_otherwise(world):
    group = make_group(world.acme, "g", access="all", variables={"X": "1"})
    before = load_layers(world.web).fingerprint
    assert load_layers(world.web).fingerprint == before
    variable = group.variables.get()
    variable.value = "2"
    variable.save()
    assert load_layers(world.web).fingerprint != before


@pytest.mark.parametrize("groups", [1, 30])
def test_resolution_runs_a_constant_number_of_queries(world, django_assert_num_queries, groups):
    team = Team.objects.create(organization=world.acme, slug="t")
    world.web.teams.add(team)
    for i in range(groups):
        make_group(
            world.acme,
            f"g{i:02}",
            teams=[team] if i % 2 else [],
            projects=[] if i % 2 else [world.web],
            priority=i % 3,
            variables={f"V{i}": "x", "SHARED": str(i)},
            secrets={f"S{i}": "s"},
        )
    ProjectVariable.objects.create(project=world.web, name="SHARED", value="p")
    # 1. the organization's groups, with whether each is selected or reached through a team
    # 2. the variables of the groups that reach the project UNION ALL the project's own
    with django_assert_num_queries(2):
        layers = load_layers(world.web)
    assert len(layers.resolution.variables) == 2 * groups + 1


def test_a_resolution_holds_only_ciphertext_and_reveal_returns_plain_text(world):
    make_group(world.acme, "g", access="all", variables={"A": "public"}, secrets={"S": "hidden"})
    ProjectVariable.objects.create(project=world.web, name="A", value="override")
    layers = load_layers(world.web)
    stored = [r.value for r in layers.resolution.variables.values()] + [
        d.value for r in layers.resolution.variables.values() for d in r.shadowed
    ]
    assert len(stored) == 3 and all(type(v) is Ciphertext for v in stored)
    assert "hidden" not in repr(layers) and "public" not in repr(layers)
    revealed = plaintext(layers)
    assert revealed == {"A": "override", "S": "hidden"}
    assert all(type(v) is str for v in revealed.values())
