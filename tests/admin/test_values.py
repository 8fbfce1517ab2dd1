"""Saving an admin page never rewrites a value nobody touched."""

from __future__ import annotations

from django.http import HttpResponse
from django.test import Client

from orgenv.models import ProjectVariable
from tests.conftest import World, confirmed


def save_project_page(
    client: Client, world: World, variable: ProjectVariable, posted_value: str
) -> HttpResponse:
    """POST the project's change page as a browser would, with one project variable, and
    confirm the impact preview if one is shown."""
    client.force_login(world.alice)
    response = client.post(
        f"/admin/orgenv/project/{world.web.pk}/change/",
        {
            "slug": "web",
            "name": "Web",
            "environment": "production",
            "members": [str(world.bob.pk)],
            "variables-TOTAL_FORMS": "1",
            "variables-INITIAL_FORMS": "1",
            "variables-MIN_NUM_FORMS": "0",
            "variables-MAX_NUM_FORMS": "1000",
            "variables-0-id": str(variable.pk),
            "variables-0-project": str(world.web.pk),
            "variables-0-name": variable.name,
            "variables-0-value": posted_value,
            "_save": "Save",
        },
    )
    return confirmed(client, response)


def test_saving_a_project_keeps_a_crlf_value_that_was_not_touched(client, world):
    stored = "-----BEGIN KEY-----\r\nabc\rdef\n\u2028tab\t-----END KEY-----\r\n"
    variable = ProjectVariable.objects.create(project=world.web, name="PEM", value=stored)
    versions = variable.history.count()
    # What a browser posts back for that textarea: every line break as CRLF.
    posted = stored.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    response = save_project_page(client, world, variable, posted)
    assert response.status_code == 302, response.content.decode()[:2000]
    variable.refresh_from_db()
    assert variable.value == stored
    assert variable.history.count() == versions


def test_a_changed_value_is_saved_with_unix_line_endings(client, world):
    variable = ProjectVariable.objects.create(project=world.web, name="NOTE", value="a\nb")
    assert save_project_page(client, world, variable, "a\r\nc").status_code == 302
    variable.refresh_from_db()
    assert variable.value == "a\nc"
