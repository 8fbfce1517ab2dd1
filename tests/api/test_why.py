"""Why NAME reaches a project, for signed-in members: the API and the environment page's box,
and resolve_env --why. Never a value."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from orgenv.models import Variable


@pytest.fixture
def demo(db):
    call_command("demo", stdout=io.StringIO())


def signed_in(username: str) -> Client:
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def test_resolve_env_why_names_the_group_not_granted_and_exits_1(demo):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("resolve_env", "acme/staging_jobs", "--why", "WANDB_API_KEY", stdout=out)
    assert exited.value.code == 1
    text = out.getvalue()
    assert (
        "Group ml-training-secrets (priority 0) defines WANDB_API_KEY but is not granted to "
        "staging_jobs." in text
    )
    assert "Grant group ml-training-secrets to project staging_jobs." in text
    assert "wandb-demo-key" not in text


def test_resolve_env_why_exits_0_when_the_name_reaches(demo):
    out = io.StringIO()
    call_command("resolve_env", "acme/production_db", "--why", "PRODUCTION_SECRET", stdout=out)
    assert "production_db gets PRODUCTION_SECRET (secret) from group:production." in out.getvalue()
    assert "hidden" not in out.getvalue()


def test_the_api_answers_a_member_with_the_admin_step_to_ask_for(demo):
    response = signed_in("alice").get("/api/v1/projects/acme/staging_jobs/why/WANDB_API_KEY")
    assert response.status_code == 200
    body = response.json()
    assert body["reaches"] is False
    assert body["causes"] == [
        {
            "source": "group:ml-training-secrets",
            "rule": "not granted",
            "text": "Group ml-training-secrets (priority 0) defines WANDB_API_KEY but is not "
            "granted to staging_jobs.",
        }
    ]
    assert body["what_to_do"] == [
        "Ask an admin of acme to grant group ml-training-secrets to project staging_jobs."
    ]
    for value in Variable.objects.filter(is_secret=True).values_list("value", flat=True):
        assert value not in response.content.decode()


def test_the_api_offers_near_misses_and_refuses_projects_not_yours(demo):
    alice = signed_in("alice")
    body = alice.get("/api/v1/projects/acme/staging_jobs/why/docker_registry_url").json()
    assert body["reaches"] is False
    assert body["near_misses"] == ["DOCKER_REGISTRY_URL (in group shared-infrastructure)"]
    assert alice.get("/api/v1/projects/acme/production_db/why/X").status_code == 404
    assert Client().get("/api/v1/projects/acme/staging_jobs/why/X").status_code == 403


def test_the_environment_page_answers_why_isnt_name_here(demo):
    page = signed_in("alice").get(
        "/orgs/acme/projects/staging_jobs/environment/", {"why": "WANDB_API_KEY"}
    )
    html = page.content.decode()
    assert "Why isn't NAME here?" in html
    assert "WANDB_API_KEY does not reach staging_jobs." in html
    assert (
        "Ask an admin of acme to grant group ml-training-secrets to project staging_jobs." in html
    )
    assert "wandb-demo-key" not in html
