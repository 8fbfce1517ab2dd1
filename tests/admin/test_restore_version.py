"""Restore this version, in the admin's history: a preview of the impact, then Confirm, which
restores exactly what was previewed (or shows the new plan if the data changed meanwhile)."""

from __future__ import annotations

import time

import pytest

from orgenv.models import Variable
from tests.admin.test_history import _url
from tests.conftest import make_group

SECRET = "restore-admin-secret-8c1"
LATER = "later-secret-value-2f9"


@pytest.fixture
def changed(world):
    """Group prod at a version with A=1 and secret S, then S rotated and A deleted."""
    group = make_group(
        world.acme, "prod", projects=[world.web], variables={"A": "1"}, secrets={"S": SECRET}
    )
    group.description = "with its variables"
    group.save()
    version = group.history.latest()
    time.sleep(0.01)
    secret = group.variables.get(name="S")
    secret.value = LATER
    secret.save()
    group.variables.get(name="A").delete()
    return group, version


def test_restore_previews_the_impact_then_confirm_restores_it(client, world, changed):
    group, version = changed
    client.force_login(world.alice)
    url = _url(group, version)
    assert "Restore this version" in client.get(url).content.decode()

    preview = client.post(url, {"_restore": "preview"})
    html = preview.content.decode()
    assert "This change affects 1 project." in html
    assert "variable A: restored (deleted since)" in html
    assert "variable S: value changed" in html
    assert "S: value changed" in html and '<th scope="row">web</th>' in html
    assert SECRET not in html and LATER not in html
    assert group.variables.get(name="S").value == LATER  # a preview writes nothing

    done = client.post(
        url, {"_restore": "confirm", "fingerprint": preview.context["restore"]["fingerprint"]}
    )
    assert done.status_code == 302
    assert group.variables.get(name="S").value == SECRET
    assert group.variables.get(name="A").value == "1"
    row = Variable.history.filter(name="S").latest()
    assert row.history_change_reason.startswith("restored to ")
    assert row.history_user == world.alice


def test_confirm_shows_the_new_plan_when_the_data_changed_since_the_preview(client, world, changed):
    group, version = changed
    client.force_login(world.alice)
    url = _url(group, version)
    fingerprint = client.post(url, {"_restore": "preview"}).context["restore"]["fingerprint"]
    Variable.objects.create(group=group, name="B", value="b")  # someone else, meanwhile

    again = client.post(url, {"_restore": "confirm", "fingerprint": fingerprint})
    assert again.status_code == 200
    html = again.content.decode()
    assert "The data changed since the preview" in html
    assert "variable B: removed (created since)" in html
    assert group.variables.get(name="S").value == LATER  # nothing restored yet
    assert group.variables.filter(name="B").exists()


def test_only_the_organizations_admins_can_restore(client, world, changed):
    group, version = changed
    url = _url(group, version)
    client.force_login(world.charlie)
    assert client.post(url, {"_restore": "preview"}).status_code == 404
    client.force_login(world.bob)
    assert client.post(url, {"_restore": "confirm", "fingerprint": "x"}).status_code == 302
    assert group.variables.get(name="S").value == LATER
