from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from orgenv import services
from orgenv.models import Project, ProjectVariable, Team, Variable
from tests.conftest import make_group


def test_variable_set_creates_then_updates_then_leaves_an_equal_value_alone(world):
    group = make_group(world.acme, "g")
    variable, outcome = services.variable_set(group=group, name="A", value="1", is_secret=False)
    assert outcome == services.CREATED
    _, outcome = services.variable_set(group=group, name="A", value="2", is_secret=False)
    assert outcome == services.UPDATED
    _, outcome = services.variable_set(group=group, name="A", value="2", is_secret=False)
    assert outcome == services.UNCHANGED
    # one history row for the creation, one for the change, none for the no-op
    assert variable.history.count() == 2
    assert Variable.objects.get(pk=variable.pk).value == "2"


def test_variable_set_treats_a_secret_flag_change_as_an_update(world):
    group = make_group(world.acme, "g", variables={"A": "1"})
    _, outcome = services.variable_set(group=group, name="A", value="1", is_secret=True)
    assert outcome == services.UPDATED
    assert group.variables.get().is_secret


def test_variable_set_rejects_a_bad_name_and_saves_nothing(world):
    group = make_group(world.acme, "g")
    with pytest.raises(ValidationError) as caught:
        services.variable_set(group=group, name="BAD-NAME", value="x", is_secret=False)
    assert "name" in caught.value.message_dict
    assert not Variable.objects.exists()


def test_variable_set_rejects_a_nul_without_quoting_the_value(world):
    group = make_group(world.acme, "g", variables={"A": "kept"})
    with pytest.raises(ValidationError) as caught:
        services.variable_set(group=group, name="A", value="top\x00secret", is_secret=True)
    assert "secret" not in str(caught.value.message_dict["value"])
    assert group.variables.get().value == "kept"


def test_project_variable_set_overrides_on_the_project(world):
    _, outcome = services.project_variable_set(
        project=world.web, name="API", value="https://x", is_secret=False
    )
    assert outcome == services.CREATED
    assert ProjectVariable.objects.get(project=world.web).value == "https://x"


def test_group_set_grants_adds_and_removes_only_with_prune(world):
    other = Project.objects.create(organization=world.acme, slug="other", name="other")
    group = make_group(world.acme, "g", projects=[world.web, other])
    team = Team.objects.create(organization=world.acme, slug="ml")
    added, removed = services.group_set_grants(group=group, projects=[world.web], teams=[team])
    assert (added, removed) == (1, 0)
    assert set(group.projects.all()) == {world.web, other}
    added, removed = services.group_set_grants(group=group, projects=[world.web], prune=True)
    assert (added, removed) == (0, 1)
    assert list(group.projects.all()) == [world.web]
    assert list(group.teams.all()) == [team]  # teams=None leaves team grants alone


def test_group_set_grants_refuses_another_organizations_project(world):
    group = make_group(world.acme, "g")
    with pytest.raises(ValidationError, match="another organization"):
        services.group_set_grants(group=group, projects=[world.globex_app])
    assert not group.projects.exists()


def test_group_set_grants_refuses_a_project_with_another_environment(world):
    staging = Project.objects.create(
        organization=world.acme, slug="jobs", name="jobs", environment="staging"
    )
    group = make_group(world.acme, "prod", environment="production")
    with pytest.raises(ValidationError) as caught:
        services.group_set_grants(group=group, projects=[world.web, staging])
    assert "'staging'" in str(caught.value) and "'production'" in str(caught.value)
    assert not group.projects.exists()  # the valid grant was not half-saved either


def test_definitions_prune_deletes_the_unlisted_and_keeps_a_history_row(world):
    group = make_group(world.acme, "g", variables={"KEEP": "1", "DROP": "2"})
    dropped = group.variables.get(name="DROP")
    assert services.definitions_prune(queryset=group.variables.all(), keep=["KEEP"]) == 1
    assert list(group.variables.values_list("name", flat=True)) == ["KEEP"]
    assert Variable.history.filter(id=dropped.pk, history_type="-").exists()


def test_project_set_applies_defaults_only_when_creating(world):
    project, outcome = services.project_set(
        organization=world.acme, slug="new", defaults={"name": "new"}, environment="staging"
    )
    assert (outcome, project.name) == (services.CREATED, "new")
    project, outcome = services.project_set(
        organization=world.acme, slug="web", defaults={"name": "ignored"}
    )
    assert (outcome, project.name) == (services.UNCHANGED, "Web")


@pytest.mark.parametrize(
    "link",
    [
        lambda group, project, team: group.teams.add(team),
        lambda group, project, team: team.granted_groups.add(group),
        lambda group, project, team: project.teams.add(team),
        lambda group, project, team: team.projects.add(project),
    ],
    ids=["group.teams", "team.granted_groups", "project.teams", "team.projects"],
)
def test_a_team_link_never_crosses_organizations_from_either_end(world, link):
    group = make_group(world.acme, "g")
    foreign = Team.objects.create(organization=world.globex, slug="ops")
    with pytest.raises(ValidationError, match="belongs to another organization"):
        with transaction.atomic():
            link(group, world.web, foreign)
    assert not group.teams.exists() and not world.web.teams.exists()
