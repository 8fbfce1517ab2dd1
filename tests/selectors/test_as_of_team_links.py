"""A project linked to a team from the team's side is in the project's past as well."""

from __future__ import annotations

from django.utils import timezone

from orgenv.models import Team
from orgenv.selectors.as_of import layers_as_of
from tests.conftest import make_group


def test_a_team_grant_made_from_the_teams_side_resolves_as_of_later_times(world):
    team = Team.objects.create(organization=world.acme, slug="ml")
    make_group(world.acme, "ml-secrets", teams=[team], variables={"WANDB": "w"})
    before = timezone.now()
    team.projects.add(world.web)  # what apply_config does for `teams: [{projects: …}]`
    linked = timezone.now()
    assert "WANDB" not in layers_as_of(world.web, before).resolution.variables
    assert layers_as_of(world.web, linked).resolution.variables["WANDB"].source == (
        "group:ml-secrets"
    )

    team.projects.remove(world.web)
    assert "WANDB" not in layers_as_of(world.web, timezone.now()).resolution.variables

    team.projects.add(world.web)
    team.projects.clear()
    assert "WANDB" not in layers_as_of(world.web, timezone.now()).resolution.variables
