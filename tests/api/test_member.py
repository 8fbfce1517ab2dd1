"""The members' endpoint (session auth) and the OpenAPI schema and docs."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from orgenv.models import AuditEvent, Project
from tests.conftest import make_group

URL = "/api/v1/projects/acme/web/environment"
SECRET = "hunter2-secret"


@pytest.fixture(autouse=True)
def fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def seeded(world):
    make_group(
        world.acme,
        "production",
        environment="production",
        projects=[world.web],
        variables={"MODE": "live"},
        secrets={"DB_PASSWORD": SECRET},
    )
    return world


def test_a_member_gets_the_spec_shape_with_secret_values_null(client, seeded):
    client.force_login(seeded.bob)
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    event = AuditEvent.objects.get(kind="resolution")
    assert body == {
        "organization": "acme",
        "project": "web",
        "variables": {"DB_PASSWORD": None, "MODE": "live"},
        "secrets": ["DB_PASSWORD"],
        "sources": {"DB_PASSWORD": "group:production", "MODE": "group:production"},
        "conflicts": [],
        "resolution_id": event.pk,
    }
    assert SECRET not in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert (event.actor, event.user) == ("bob", seeded.bob)


@pytest.mark.parametrize("who", ["org_admin", "superuser"])
def test_admins_and_superusers_get_null_for_every_secret_too(client, seeded, who):
    """Secrets leave a session one at a time, through the audited reveal, never in bulk."""
    from django.contrib.auth.models import User

    user = seeded.alice
    if who == "superuser":
        user = User.objects.create_superuser("root", password="root-password")
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json()["variables"] == {"DB_PASSWORD": None, "MODE": "live"}
    assert SECRET not in response.content.decode()


def test_an_admin_membership_without_staff_status_reads_only_the_members_projects(client, seeded):
    """Taking staff status away takes admin rights away: an admin role alone opens nothing."""
    from django.contrib.auth.models import User

    from orgenv.models import Membership

    dave = User.objects.create_user("dave", password="dave-password")
    Membership.objects.create(user=dave, organization=seeded.acme, role="admin")
    client.force_login(dave)
    assert client.get(URL).status_code == 404
    seeded.web.members.add(dave)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json()["variables"]["DB_PASSWORD"] is None


def test_an_admin_of_another_organization_gets_404(client, seeded):
    client.force_login(seeded.charlie)
    response = client.get(URL)
    assert response.status_code == 404
    assert "detail" in response.json()
    assert not AuditEvent.objects.filter(kind="resolution").exists()


def test_a_member_gets_404_for_a_project_of_their_organization_they_do_not_belong_to(
    client, seeded
):
    Project.objects.create(organization=seeded.acme, slug="secret-lab", name="Lab")
    client.force_login(seeded.bob)
    assert client.get("/api/v1/projects/acme/secret-lab/environment").status_code == 404
    assert client.get("/api/v1/projects/acme/no-such/environment").status_code == 404


def test_an_anonymous_caller_gets_403_with_a_json_detail(client, seeded):
    response = client.get(URL)
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_project_token_does_not_open_the_member_endpoint(client, seeded):
    from orgenv.tokens import token_issue

    _, raw = token_issue(project=seeded.web, name="ci")
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 403
    assert SECRET not in response.content.decode()


def test_the_schema_documents_both_endpoints_the_formats_and_bearer_auth(client, db):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    runner = schema["paths"]["/api/v1/environment"]["get"]
    member = schema["paths"]["/api/v1/projects/{org}/{project}/environment"]["get"]
    assert runner["security"] == [{"projectToken": []}]
    assert schema["components"]["securitySchemes"]["projectToken"]["scheme"] == "bearer"
    fmt = next(p for p in runner["parameters"] if p["name"] == "format")
    assert sorted(fmt["schema"]["enum"]) == ["dotenv", "json", "shell"]
    assert set(runner["responses"]) >= {"200", "304", "400", "401", "429"}
    assert set(runner["responses"]["200"]["content"]) == {"application/json", "text/plain"}
    assert set(member["responses"]) >= {"200", "403", "404"}
    environment = schema["components"]["schemas"]["Environment"]["properties"]
    assert set(environment) == {
        "organization",
        "project",
        "variables",
        "secrets",
        "sources",
        "conflicts",
        "resolution_id",
    }


def test_the_docs_page_is_served_from_local_static_files(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    hosts = re.findall(r"""(?:src|href)=["']?((?:https?:)?//[^/"'\s>]+)""", html)
    assert hosts == [], f"external hosts referenced: {hosts}"
    assert "/static/drf_spectacular_sidecar/" in html
