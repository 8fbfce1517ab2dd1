"""Every workspace path that could change a protected group opens a request or refuses: Paste
.env, Restore this version, a variable's own page, the project page's grants, bulk delete."""

from __future__ import annotations

import time

import pytest

from orgenv.models import ChangeRequest, Variable, VariableGroup
from tests.admin.test_history import _url
from tests.admin.test_project_grants import change_url as project_url
from tests.admin.test_project_grants import project_post
from tests.changes.conftest import SECRET

pytestmark = pytest.mark.django_db


def test_paste_into_a_protected_group_opens_a_request(client, world, review):
    client.force_login(world.alice)
    url = f"/admin/orgenv/variablegroup/{review.group.pk}/paste/"
    response = client.post(url, {"step": "import", "text": "A=pasted\nNEW=x\n"})
    if response.status_code == 200 and response.context.get("preview"):
        response = client.post(
            url, {"_impact_id": response.context["preview"].preview_id, "_impact_confirm": "1"}
        )
    request = ChangeRequest.objects.get()
    assert response["Location"] == f"/admin/orgs/acme/requests/{request.pk}/"
    assert request.diff == [["variable", "A", "value changed"], ["variable", "NEW", "added"]]
    assert Variable.objects.get(name="A").value == "1"
    assert not Variable.objects.filter(name="NEW").exists()


def test_restoring_a_protected_groups_version_opens_a_request(client, world, review):
    review.group.description = "with its variables"
    review.group.save()
    version = review.group.history.latest()
    time.sleep(0.01)
    Variable.objects.filter(name="A").get().delete()  # made outside: the group's new state
    client.force_login(world.alice)
    url = _url(review.group, version)
    fingerprint = client.post(url, {"_restore": "preview"}).context["restore"]["fingerprint"]
    response = client.post(url, {"_restore": "confirm", "fingerprint": fingerprint})
    request = ChangeRequest.objects.get()
    assert response["Location"] == f"/admin/orgs/acme/requests/{request.pk}/"
    assert request.diff == [["variable", "A", "added"]]
    assert not Variable.objects.filter(name="A").exists()


def test_a_protected_groups_variable_cannot_be_changed_on_its_own_page(client, world, review):
    client.force_login(world.alice)
    variable = Variable.objects.get(name="S")
    url = f"/admin/orgenv/variable/{variable.pk}/change/"
    data = {"group": review.group.pk, "name": "S", "value": "typed", "is_secret": "on"}
    client.post(url, data)
    assert Variable.objects.get(name="S").value == SECRET
    assert (
        client.post(f"/admin/orgenv/variable/{variable.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    response = client.post("/admin/orgenv/variable/add/", {**data, "name": "NEW"})
    assert response.status_code == 403
    assert not Variable.objects.filter(name="NEW").exists()


def test_the_project_page_cannot_grant_or_remove_a_protected_group(client, world, review):
    client.force_login(world.alice)
    response = client.post(project_url(world.web), project_post(world.web, granted_groups=[]))
    assert response.status_code == 200
    assert "live is protected: grant or remove it on the group" in response.content.decode()
    assert list(review.group.projects.all()) == [world.web]
    response = client.post(
        project_url(review.api), project_post(review.api, granted_groups=[review.group.pk])
    )
    assert "live is protected" in response.content.decode()
    assert list(review.group.projects.all()) == [world.web]


def test_bulk_delete_refuses_protected_groups(client, world, review):
    client.force_login(world.alice)
    response = client.post(
        "/admin/orgenv/variablegroup/",
        {"action": "delete_selected", "_selected_action": [review.group.pk], "post": "yes"},
        follow=True,
    )
    assert "a protected group is deleted from its own page" in response.content.decode()
    assert VariableGroup.objects.filter(pk=review.group.pk).exists()
