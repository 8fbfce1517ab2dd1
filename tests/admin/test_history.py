"""The admin's history pages (orgenv.admin.history): read-only past versions that show the
grants of their time, an empty save that writes no history, and readable columns."""

from __future__ import annotations

import re

import pytest

from orgenv import services
from orgenv.actors import acting_as
from orgenv.audit.censor import MASK
from orgenv.models import Project, Team, Variable, VariableGroup
from orgenv.tokens import token_issue
from tests.admin.test_groups import post_group
from tests.conftest import make_group

SECRET = "history-admin-secret-4b7"


@pytest.fixture
def regranted(world):
    """Group `prod`: first granted to web, then moved to project `api` and team `ml`."""
    api = Project.objects.create(organization=world.acme, slug="api", name="API")
    ml = Team.objects.create(organization=world.acme, slug="ml")
    group = make_group(world.acme, "prod", projects=[world.web], secrets={"S": SECRET})
    group.projects.set([api])
    group.teams.add(ml)
    return group


def _url(obj, record=None) -> str:
    base = f"/admin/orgenv/{obj._meta.model_name}/{obj.pk}/history/"
    return base if record is None else f"{base}{record.history_id}/"


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html))


def test_a_past_version_of_a_group_shows_the_grants_of_that_version(client, world, regranted):
    client.force_login(world.alice)
    first_grant, *_, now = regranted.history.order_by("history_date", "history_id")[1:]
    then = client.get(_url(regranted, first_grant))
    assert then.status_code == 200
    rows = dict(then.context["rows"])
    assert rows["Projects"] == "acme/web"
    assert rows["Teams"] == "—"
    latest = dict(client.get(_url(regranted, now)).context["rows"])
    assert latest["Projects"] == "acme/api" and latest["Teams"] == "acme/ml"
    assert "as they were in this version" in then.content.decode()


def test_a_past_version_looks_read_only_and_offers_no_revert(client, world, regranted):
    client.force_login(world.alice)
    for record in regranted.history.all():
        html = client.get(_url(regranted, record)).content.decode()
        content = html[html.index('id="content-main"') :]
        for editable in ("<select", "<textarea", 'name="projects"', 'name="_save"', "Revert"):
            assert editable not in content, editable
        assert "related-widget-wrapper" not in html and "add-related" not in html
        assert SECRET not in html
    assert "View history" in client.get(_url(regranted)).content.decode()


def test_reverting_is_refused_for_every_model_and_changes_nothing(client, world, regranted):
    client.force_login(world.alice)
    first = regranted.history.earliest()
    response = client.post(
        _url(regranted, first),
        {"name": "prod", "priority": "0", "access": "selected", "projects": [world.web.pk]},
    )
    assert response.status_code == 403
    assert list(regranted.projects.values_list("slug", flat=True)) == ["api"]
    team = Team.objects.get(slug="ml")
    assert client.post(_url(team, team.history.earliest()), {"slug": "x"}).status_code == 403
    assert client.post(_url(world.acme, world.acme.history.earliest()), {}).status_code == 403
    team.refresh_from_db()
    world.acme.refresh_from_db()
    assert (team.slug, world.acme.slug) == ("ml", "acme")


def test_an_outsider_gets_404_for_a_past_version_whatever_the_method(client, world, regranted):
    client.force_login(world.charlie)
    url = _url(regranted, regranted.history.earliest())
    assert client.get(url).status_code == 404
    assert client.post(url, {}).status_code == 404


def test_a_past_version_of_a_variable_masks_its_value(client, world, regranted):
    client.force_login(world.alice)
    variable = Variable.objects.get(group=regranted, name="S")
    response = client.get(_url(variable, variable.history.earliest()))
    assert dict(response.context["rows"])["Value"] == MASK
    assert SECRET not in response.content.decode()


def test_saving_a_group_with_only_a_variable_changed_writes_no_group_history(
    client, world, regranted
):
    client.force_login(world.alice)
    variable = Variable.objects.get(group=regranted, name="S")
    before = regranted.history.count()

    def changed_group_rows() -> int:
        return _text(client.get("/orgs/acme/audit/").content.decode()).count("changed group prod")

    shown = changed_group_rows()
    response = post_group(
        client,
        regranted,
        [{"id": variable.pk, "name": "S", "value": "new-secret-9a2", "is_secret": True}],
    )
    assert response.status_code == 302
    assert regranted.history.count() == before
    assert variable.history.count() == 2
    assert changed_group_rows() == shown


def test_changing_only_a_groups_grants_saves_them_with_one_history_row(client, world, regranted):
    client.force_login(world.alice)
    variable = Variable.objects.get(group=regranted, name="S")
    before = regranted.history.count()
    response = post_group(
        client,
        regranted,
        [{"id": variable.pk, "name": "S", "value": "", "is_secret": True}],
        projects=[str(p.pk) for p in Project.objects.filter(organization=world.acme)],
    )
    assert response.status_code == 302
    assert sorted(regranted.projects.values_list("slug", flat=True)) == ["api", "web"]
    # One row, the grant's: no row of a save that changed no column of the group.
    assert regranted.history.count() == before + 1
    history = client.get(_url(regranted)).content.decode()
    assert "acme/web" in history


def test_the_history_list_names_who_acted_in_one_labelled_column(client, world):
    client.force_login(world.alice)
    with acting_as("system:apply_config"):
        group = make_group(world.acme, "cmd")
    html = client.get(_url(group)).content.decode()
    assert "Acted as/by" in html and "history_actor" not in html
    assert "Changed by" not in html
    assert "system:apply_config" in html
    assert not re.search(r"<td>\s*None\s*</td>", html)
    token, _ = token_issue(project=world.web, name="ci", created_by=world.alice)
    token.name = "ci-renamed"
    token.save()
    page = client.get(_url(token)).content.decode()
    assert "Acted as/by" in page and not re.search(r"<td>\s*None\s*</td>", page)
    assert (
        dict(client.get(_url(token, token.history.earliest())).context["rows"])["Created by"]
        == "alice"
    )


def test_a_deleted_groups_past_version_is_still_readable(client, world, regranted):
    client.force_login(world.alice)
    pk = regranted.pk
    first = regranted.history.earliest()
    regranted.delete()
    response = client.get(f"/admin/orgenv/variablegroup/{pk}/history/{first.history_id}/")
    assert response.status_code == 200
    assert response.context["change_url"] is None
    assert VariableGroup.objects.filter(pk=pk).count() == 0


def test_a_groups_history_shows_its_variables_changes_without_values(client, world):
    group = make_group(world.acme, "db", secrets={"DB_PASSWORD": "first-Secret-1"})
    with acting_as("system:rotate"):
        services.variable_set(
            group=group, name="DB_PASSWORD", value="second-Secret-2", is_secret=True
        )
        services.variable_set(group=group, name="DB_HOST", value="db.internal", is_secret=False)
    client.force_login(world.alice)
    html = client.get(f"/admin/orgenv/variablegroup/{group.pk}/history/").content.decode()
    changes = html[html.index('id="group-changes"') : html.index("Versions of the group")]
    assert "variable DB_PASSWORD in group db" in changes
    assert "value changed" in changes
    assert "variable DB_HOST in group db" in changes and "created" in changes
    assert "system:rotate" in changes
    for value in ("first-Secret-1", "second-Secret-2", "db.internal"):
        assert value not in html
    assert 'href="/admin/orgs/acme/audit/?group=db"' in html
