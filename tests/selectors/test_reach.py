"""selectors.reach.load_world: an organization as the impact preview and "why" see it, in a
constant number of queries, resolving exactly as the live loader does, its values sealed
until opened."""

from __future__ import annotations

import pytest
from django.db import connection

from orgenv import crypto
from orgenv.models import Team, Variable
from orgenv.resolution.impact import resolve_world
from orgenv.selectors.layers import load_layers
from orgenv.selectors.reach import load_world, opened
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
    # the reach loader's five (projects, groups, project grants, team grants, project-team
    # links), teams, group variables, project variables
    with django_assert_num_queries(8):
        loaded = load_world(world.acme)
    resolved = resolve_world(opened(loaded))["web"]
    live = load_layers(world.web).resolution
    assert resolved.sources == live.sources
    assert [c.as_dict() for c in resolved.conflicts] == [c.as_dict() for c in live.conflicts]


def test_values_stay_ciphertext_until_opened(world):
    make_group(world.acme, "g", secrets={"S": "plain-secret"}, projects=[world.web])
    sealed = load_world(world.acme).groups["g"].variables["S"]
    assert type(sealed.value) is crypto.Ciphertext
    assert "plain-secret" not in repr(sealed) and sealed.value.startswith("gAAAA")
    plain = opened(load_world(world.acme)).groups["g"].variables["S"]
    assert type(plain.value) is str and plain.value == "plain-secret" and plain.is_secret


def test_a_value_no_key_opens_reads_as_undecryptable_with_its_row(world):
    group = make_group(world.acme, "g", variables={"A": "a"}, projects=[world.web])
    row = group.variables.get(name="A").pk
    table = Variable._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET value = %s WHERE id = %s", ["gAAAAAnotatoken", row])
    value = opened(load_world(world.acme)).groups["g"].variables["A"].value
    assert value == f"{crypto.UNDECRYPTABLE}: {table} id {row}"
