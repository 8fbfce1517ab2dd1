"""selectors.world: an organization as the impact preview sees it, in a constant number of
queries, resolving exactly as the live loader does."""

from __future__ import annotations

import pytest

from orgenv.models import Team
from orgenv.resolution.impact import resolve_world
from orgenv.selectors.layers import load_layers
from orgenv.selectors.world import load_world
from tests.conftest import make_group


@pytest.mark.parametrize("groups", [1, 12])
def test_it_runs_eight_queries_whatever_the_number_of_groups(
    world, django_assert_num_queries, groups
):
    team = Team.objects.create(organization=world.acme, slug="ml")
    world.web.teams.add(team)
    for i in range(groups):
        make_group(
            world.acme,
            f"g{i}",
            variables={"A": str(i)},
            secrets={f"S{i}": "s"},
            projects=[world.web] if i % 2 else [],
            teams=[team] if i % 3 else [],
            priority=i % 2,
        )
    # teams, projects, project-team links, project variables, groups, project grants,
    # team grants, group variables
    with django_assert_num_queries(8):
        loaded = load_world(world.acme)
    resolved = resolve_world(loaded)["web"]
    live = load_layers(world.web).resolution
    assert resolved.sources == live.sources
    assert [c.as_dict() for c in resolved.conflicts] == [c.as_dict() for c in live.conflicts]


def test_without_decrypting_the_values_stay_tokens(world):
    make_group(world.acme, "g", secrets={"S": "plain-secret"}, projects=[world.web])
    loaded = load_world(world.acme, decrypt=False)
    token = loaded.groups["g"].variables["S"].value
    assert token != "plain-secret" and token.startswith("gAAAA")
