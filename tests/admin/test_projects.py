"""The project page: project variables with the write-only widget, the effective environment."""

from __future__ import annotations

import pytest

from orgenv.models import Project, ProjectVariable
from tests.conftest import confirmed, make_group

pytestmark = pytest.mark.django_db


def change_url(project: Project) -> str:
    return f"/admin/orgenv/project/{project.pk}/change/"


@pytest.fixture
def layered(world):
    """web gets `base` (all projects), `db` (selected, secret) and a project override;
    `ops` and `base` clash on LOG_LEVEL at equal priority; `dev` is kept out by the guard."""
    make_group(
        world.acme,
        "base",
        access="all",
        variables={"API_URL": "https://api.example.com", "LOG_LEVEL": "info"},
    )
    make_group(world.acme, "ops", access="all", variables={"LOG_LEVEL": "debug"})
    make_group(world.acme, "db", secrets={"DB_PASSWORD": "pg-hunter2"}, projects=[world.web])
    make_group(world.acme, "dev", access="all", environment="development", variables={"DEV": "1"})
    ProjectVariable.objects.create(
        project=world.web, name="API_URL", value="https://web.example.com"
    )
    ProjectVariable.objects.create(
        project=world.web, name="SIGNING_KEY", value="proj-secret-99", is_secret=True
    )
    return world.web


def panel(html: str) -> str:
    start = html.index('id="effective-environment"')
    return html[start : html.index("</fieldset>", start)]


def test_the_effective_environment_shows_sources_and_masks_secrets(client, world, layered):
    client.force_login(world.alice)
    html = client.get(change_url(layered)).content.decode()
    effective = panel(html)
    assert 'data-label="Name"><code>API_URL</code>' in effective
    assert "https://web.example.com" in effective
    assert '<td data-label="Source">project</td>' in effective
    assert "group:base" in effective  # API_URL shadows it, and it is LOG_LEVEL's source
    assert '<td data-label="Source">group:db</td>' in effective
    assert "••••••" in effective
    # Neither secret reaches the page, in the panel or in the inline.
    assert "pg-hunter2" not in html
    assert "proj-secret-99" not in html


def test_the_effective_environment_shows_conflicts_and_guard_skips(client, world, layered):
    client.force_login(world.alice)
    effective = panel(client.get(change_url(layered)).content.decode())
    assert (
        '<td data-label="Name">LOG_LEVEL</td><td data-label="Wins">group:base</td>'
        '<td data-label="Loses">group:ops</td>'
    ) in effective
    assert "dev (environment guard" in effective
    assert "<code>DEV</code>" not in effective


def test_leaving_a_project_secret_blank_keeps_it(client, world, layered):
    variables = list(layered.variables.order_by("name"))
    data = {
        "slug": "web",
        "name": "Web",
        "environment": "production",
        "members": [str(world.bob.pk)],
        "variables-TOTAL_FORMS": str(len(variables)),
        "variables-INITIAL_FORMS": str(len(variables)),
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, v in enumerate(variables):
        data |= {
            f"variables-{i}-id": str(v.pk),
            f"variables-{i}-project": str(layered.pk),
            f"variables-{i}-name": v.name,
            f"variables-{i}-value": "" if v.is_secret else v.value,
        }
        if v.is_secret:
            data[f"variables-{i}-is_secret"] = "on"
    client.force_login(world.alice)
    response = confirmed(client, client.post(change_url(layered), data))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert layered.variables.get(name="SIGNING_KEY").value == "proj-secret-99"


def test_charlie_cannot_see_an_acme_projects_environment(client, world, layered):
    client.force_login(world.charlie)
    response = client.get(change_url(layered))
    assert response.status_code == 302
    assert "web.example.com" not in response.content.decode()


def test_the_variable_list_shows_names_but_no_values(client, world, layered):
    client.force_login(world.alice)
    html = client.get("/admin/orgenv/projectvariable/").content.decode()
    assert "SIGNING_KEY" in html
    assert "proj-secret-99" not in html
    assert "web.example.com" not in html
    html = client.get("/admin/orgenv/variable/").content.decode()
    assert "DB_PASSWORD" in html
    assert "pg-hunter2" not in html
    secret = layered.variables.get(name="SIGNING_KEY")
    page = client.get(f"/admin/orgenv/projectvariable/{secret.pk}/change/").content.decode()
    assert "SIGNING_KEY" in page
    assert "proj-secret-99" not in page


def test_relabelling_a_project_out_of_a_labelled_groups_reach_is_refused(client, world):
    group = make_group(world.acme, "prod-creds", environment="production", projects=[world.web])
    data = {
        "slug": "web",
        "name": "Web",
        "environment": "staging",
        "members": [str(world.bob.pk)],
        "granted_groups": [str(group.pk)],  # still ticked, as the page shows it
        "variables-TOTAL_FORMS": "0",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    client.force_login(world.alice)
    response = client.post(change_url(world.web), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "labelled &#x27;staging&#x27;" in html
    assert "labelled &#x27;production&#x27;" in html
    world.web.refresh_from_db()
    assert world.web.environment == "production"
