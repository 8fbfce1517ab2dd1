"""The project page grants groups from the project's side: the same environment guard, the
same organization scoping (tampered POSTs included), and onboarding in one page."""

from __future__ import annotations

import pytest

from orgenv.models import Project, VariableGroup
from orgenv.selectors.layers import load_layers
from tests.conftest import confirmed, make_group

pytestmark = pytest.mark.django_db


def project_post(project: Project | None, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "slug": project.slug if project else "",
        "name": project.name if project else "",
        "environment": project.environment if project else "",
        "variables-TOTAL_FORMS": "0",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    data.update(fields)
    return data


def change_url(project: Project) -> str:
    return f"/admin/orgenv/project/{project.pk}/change/"


def test_a_group_is_granted_and_removed_from_the_project_page(client, world):
    db = make_group(world.acme, "db", environment="production", variables={"DB_HOST": "h"})
    client.force_login(world.alice)
    response = client.post(change_url(world.web), project_post(world.web, granted_groups=[db.pk]))
    response = confirmed(client, response)
    assert response.status_code == 302
    assert list(db.projects.all()) == [world.web]
    assert "DB_HOST" in load_layers(world.web).resolution.variables
    assert db.history.first().history_actor == "alice"  # recorded on the group
    response = confirmed(client, client.post(change_url(world.web), project_post(world.web)))
    assert response.status_code == 302
    assert not db.projects.exists()


def test_the_guard_refuses_a_group_of_another_label_naming_both(client, world):
    staging = make_group(world.acme, "stg", environment="staging")
    client.force_login(world.alice)
    page = client.get(change_url(world.web)).content.decode()
    # the picker shows the refusal before anyone submits
    assert "labelled staging, this project is production" in page
    assert (
        f'name="granted_groups" value="{staging.pk}" id="id_granted_groups_0" '
        'data-environment="staging" disabled>'
    ) in page
    response = client.post(
        change_url(world.web), project_post(world.web, granted_groups=[staging.pk])
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "labelled &#x27;production&#x27; but group &#x27;stg&#x27; is labelled" in html
    assert not staging.projects.exists()


def test_a_tampered_post_cannot_grant_another_organizations_group(client, world):
    foreign = make_group(world.globex, "globex-secrets", access="selected")
    client.force_login(world.alice)
    response = client.post(
        change_url(world.web), project_post(world.web, granted_groups=[foreign.pk])
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not foreign.projects.exists()
    assert "globex-secrets" not in response.content.decode()


def test_charlie_cannot_change_acmes_grants(client, world):
    db = make_group(world.acme, "db")
    client.force_login(world.charlie)
    response = client.post(change_url(world.web), project_post(world.web, granted_groups=[db.pk]))
    assert response.status_code in (302, 403, 404)
    assert not db.projects.exists()


def test_onboarding_a_project_takes_one_page(client, world):
    db = make_group(world.acme, "db", environment="production", secrets={"DB_PASSWORD": "pw"})
    shared = make_group(world.acme, "shared", variables={"REGION": "eu"})
    client.force_login(world.alice)
    data = project_post(
        None,
        organization=world.acme.pk,
        slug="api",
        name="API",
        environment="production",
        granted_groups=[db.pk, shared.pk],
        **{
            "variables-TOTAL_FORMS": "1",
            "variables-0-name": "PORT",
            "variables-0-value": "8080",
        },
    )
    response = client.post("/admin/orgenv/project/add/?organization=acme", data)
    response = confirmed(client, response)
    assert response.status_code == 302, response.content.decode()[:3000]
    api = Project.objects.get(slug="api")
    assert response["Location"] == change_url(api)
    resolved = load_layers(api).resolution.variables
    assert {n: r.source for n, r in resolved.items()} == {
        "DB_PASSWORD": "group:db",
        "REGION": "group:shared",
        "PORT": "project",
    }


def test_relabelling_while_removing_the_group_that_would_refuse_is_accepted(client, world):
    db = make_group(world.acme, "db", environment="production", projects=[world.web])
    client.force_login(world.alice)
    response = client.post(change_url(world.web), project_post(world.web, environment="staging"))
    assert response.status_code == 302
    world.web.refresh_from_db()
    assert world.web.environment == "staging"
    assert not VariableGroup.objects.get(pk=db.pk).projects.exists()
