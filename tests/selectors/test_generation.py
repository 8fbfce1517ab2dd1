"""The organization's generation (database triggers, migration 0006): every write that can
change a resolution replaces it, whatever wrote it, and app servers key the layers they keep
by it (orgenv.selectors.layers.cached_layers)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from orgenv.models import Organization, Project, ProjectVariable, Team, Variable, VariableGroup
from orgenv.services import group_set_grants, variable_set
from tests.conftest import make_group


def generation(org: Organization) -> int:
    return Organization.objects.values_list("generation", flat=True).get(pk=org.pk)


@pytest.fixture
def scene(world):
    group = make_group(world.acme, "shared", projects=[world.web], variables={"A": "1"})
    team = Team.objects.create(organization=world.acme, slug="team")
    ProjectVariable.objects.create(project=world.web, name="P", value="p")
    return world, group, team


WRITES = {
    "a group variable set": lambda w, g, t: variable_set(
        group=g, name="A", value="2", is_secret=False
    ),
    "a group variable deleted": lambda w, g, t: Variable.objects.get(name="A").delete(),
    "a project variable saved": lambda w, g, t: (
        ProjectVariable.objects.filter(name="P").get().save()
    ),
    "a project variable deleted": lambda w, g, t: ProjectVariable.objects.get(name="P").delete(),
    "a group's priority changed": lambda w, g, t: (setattr(g, "priority", 5), g.save()),
    "a group deleted": lambda w, g, t: g.delete(),
    "a grant removed": lambda w, g, t: group_set_grants(group=g, projects=[], prune=True),
    "a group granted to a team": lambda w, g, t: g.teams.add(t),
    "a team linked to the project": lambda w, g, t: w.web.teams.add(t),
    "a team unlinked, from the project's side": lambda w, g, t: (
        w.web.teams.add(t),
        w.web.teams.remove(t),
    ),
    "a team deleted": lambda w, g, t: t.delete(),
    "the project's environment changed": lambda w, g, t: (
        setattr(w.web, "environment", "staging"),
        w.web.save(),
    ),
    "a project added": lambda w, g, t: Project.objects.create(
        organization=w.acme, slug="new", name="New"
    ),
    "the organization's slug changed": lambda w, g, t: (
        setattr(w.acme, "slug", "acme-2"),
        w.acme.save(),
    ),
    # Writes that send no signal and run no model code.
    "values changed by QuerySet.update()": lambda w, g, t: Variable.objects.filter(group=g).update(
        is_secret=True
    ),
    "priorities changed by QuerySet.update()": lambda w, g, t: VariableGroup.objects.filter(
        pk=g.pk
    ).update(priority=9),
    "project variables added by bulk_create": lambda w, g, t: ProjectVariable.objects.bulk_create(
        [ProjectVariable(project=w.web, name="BULK", value="b")]
    ),
    "a grant deleted in raw SQL": lambda w, g, t: connection.cursor().execute(
        f"DELETE FROM {VariableGroup.projects.through._meta.db_table} WHERE variablegroup_id = %s",
        [g.pk],
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_each_write_that_can_change_a_resolution_replaces_the_generation(scene, write):
    world, group, team = scene
    before = generation(world.acme)
    other = generation(world.globex)
    WRITES[write](world, group, team)
    assert generation(world.acme) != before
    assert generation(world.globex) == other  # another organization keeps what it has


def test_a_rolled_back_write_leaves_the_generation_as_it_was(scene):
    world, group, _ = scene
    before = generation(world.acme)
    with pytest.raises(RuntimeError), transaction.atomic():
        variable_set(group=group, name="A", value="3", is_secret=False)
        raise RuntimeError("abandon")
    assert generation(world.acme) == before


def test_saving_a_stale_organization_never_brings_an_old_generation_back(scene):
    world, group, _ = scene
    stale = Organization.objects.get(pk=world.acme.pk)
    old = stale.generation
    variable_set(group=group, name="A", value="changed", is_secret=False)
    stale.name = "Acme Machine Learning"
    stale.save()  # the ORM writes every column, the generation it read included
    assert generation(world.acme) not in {old, stale.generation}
