"""Deleting from the admin shows what it does to every project's environment first
(orgenv.admin.deleting): a group, a project, a variable, a team, one at a
time or with "Delete selected". Showing writes nothing; confirming deletes only if the
organization did not change since the page was shown."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orgenv.admin.deleting import DELETION_GENERATION
from orgenv.models import Organization, Project, Team, Variable, VariableGroup
from tests.admin.conftest import OLD_SECRET
from tests.admin.test_impact_preview import written
from tests.conftest import make_group

pytestmark = pytest.mark.django_db


def delete_url(obj) -> str:
    return f"/admin/orgenv/{obj._meta.model_name}/{obj.pk}/delete/"


def generation(world) -> int:
    return Organization.objects.get(pk=world.acme.pk).generation


def table(response) -> dict[str, list[tuple[str, str, str]]]:
    return {
        project: [(r.name, r.kind, r.detail) for r in rows]
        for project, rows in response.context["deletion"].projects
    }


def test_the_deletion_page_shows_the_impact_and_writes_nothing(client, world, prod):
    client.force_login(world.alice)
    before, shown_at = written(), generation(world)
    response = client.get(delete_url(prod))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Deleting this affects 2 projects." in html
    removed = [
        ("A", "removed", "was from group:prod"),
        ("C", "removed", "was from group:prod"),
        ("S", "removed", "was from group:prod"),
    ]
    assert table(response) == {"api": removed, "web": removed}
    assert "What each project receives after the deletion" in html
    assert f'name="{DELETION_GENERATION}" value="{shown_at}"' in html
    assert OLD_SECRET not in html
    assert "no-store" in response["Cache-Control"]
    # Django's own list of what goes is still there.
    assert 'id="deleted-objects"' in html
    assert written() == before and generation(world) == shown_at
    assert VariableGroup.objects.filter(pk=prod.pk).exists()


def test_confirming_deletes_what_was_shown(client, world, prod):
    client.force_login(world.alice)
    shown_at = client.get(delete_url(prod)).context["deletion"].generation
    response = client.post(delete_url(prod), {"post": "yes", DELETION_GENERATION: shown_at})
    assert response.status_code == 302
    assert not VariableGroup.objects.filter(pk=prod.pk).exists()
    assert not Variable.objects.filter(name="S").exists()


def test_a_change_meanwhile_shows_the_deletion_again_and_deletes_nothing(client, world, prod):
    client.force_login(world.alice)
    shown_at = client.get(delete_url(prod)).context["deletion"].generation
    # Meanwhile someone else gives web a variable of its own named A: deleting prod no
    # longer removes A from web.
    Project.objects.get(pk=world.web.pk).variables.create(name="A", value="own")
    response = client.post(delete_url(prod), {"post": "yes", DELETION_GENERATION: shown_at})
    assert response.status_code == 200
    html = response.content.decode()
    assert "changed since this page was shown, so nothing was deleted" in html
    assert [name for name, _, _ in table(response)["web"]] == ["C", "S"]
    assert VariableGroup.objects.filter(pk=prod.pk).exists()
    # Confirming the page as shown again deletes.
    again = response.context["deletion"].generation
    assert again != shown_at
    response = client.post(delete_url(prod), {"post": "yes", DELETION_GENERATION: again})
    assert response.status_code == 302
    assert not VariableGroup.objects.filter(pk=prod.pk).exists()


def test_a_confirmation_without_the_generation_shown_deletes_nothing(client, world, prod):
    client.force_login(world.alice)
    response = client.post(delete_url(prod), {"post": "yes"})
    assert response.status_code == 200
    assert "nothing was deleted" in response.content.decode()
    assert VariableGroup.objects.filter(pk=prod.pk).exists()


def test_a_group_that_reaches_no_project_says_so(client, world):
    alone = make_group(world.acme, "alone", variables={"X": "1"})
    client.force_login(world.alice)
    response = client.get(delete_url(alone))
    html = response.content.decode()
    assert "Deleting this affects no project&#x27;s environment." in html
    assert 'id="impact-table"' not in html


def test_deleting_a_project_or_one_variable_shows_its_impact(client, world, prod):
    client.force_login(world.alice)
    response = client.get(delete_url(world.web))
    assert "Deleting this affects 1 project." in response.content.decode()
    assert [name for name, kind, _ in table(response)["web"] if kind == "removed"] == [
        "A",
        "B",
        "C",
        "S",
    ]
    secret = Variable.objects.get(name="S")
    response = client.get(delete_url(secret))
    assert table(response) == {
        "api": [("S", "removed", "was from group:prod")],
        "web": [("S", "removed", "was from group:prod")],
    }
    assert OLD_SECRET not in response.content.decode()


def test_deleting_a_team_shows_the_projects_that_lose_its_groups(client, world):
    team = Team.objects.create(organization=world.acme, slug="data")
    team.projects.add(world.web)
    make_group(world.acme, "team-only", variables={"T": "1"}, teams=[team])
    client.force_login(world.alice)
    response = client.get(delete_url(team))
    assert table(response) == {"web": [("T", "removed", "was from group:team-only")]}


def test_delete_selected_shows_the_impact_and_confirms_the_same_way(client, world, prod):
    other = VariableGroup.objects.get(name="other")
    client.force_login(world.alice)
    changelist = "/admin/orgenv/variablegroup/"
    chosen = {"action": "delete_selected", "_selected_action": [prod.pk, other.pk]}
    before = written()
    response = client.post(changelist, chosen)
    assert response.status_code == 200
    assert "Deleting this affects 2 projects." in response.content.decode()
    assert [name for name, _, _ in table(response)["web"]] == ["A", "B", "C", "S"]
    assert written() == before
    shown_at = response.context["deletion"].generation

    stale = client.post(changelist, {**chosen, "post": "yes", DELETION_GENERATION: shown_at - 1})
    assert "nothing was deleted" in stale.content.decode()
    assert VariableGroup.objects.filter(pk__in=[prod.pk, other.pk]).count() == 2

    done = client.post(changelist, {**chosen, "post": "yes", DELETION_GENERATION: shown_at})
    assert done.status_code == 302
    assert not VariableGroup.objects.filter(pk__in=[prod.pk, other.pk]).exists()


def test_delete_selected_across_organizations_is_refused(client, world, prod):
    root = User.objects.create_superuser("root", password="root-password")
    elsewhere = make_group(world.globex, "globex-group", projects=[world.globex_app])
    client.force_login(root)
    response = client.post(
        "/admin/orgenv/variablegroup/",
        {"action": "delete_selected", "_selected_action": [prod.pk, elsewhere.pk]},
        follow=True,
    )
    assert "Select objects of one organization at a time" in response.content.decode()
    assert VariableGroup.objects.filter(pk__in=[prod.pk, elsewhere.pk]).count() == 2
