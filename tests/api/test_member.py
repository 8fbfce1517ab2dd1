"""The members' endpoint (session auth) and the OpenAPI schema and docs."""

from __future__ import annotations

import re

import pytest

from orgenv.models import AuditEvent, Project
from tests.conftest import production_group

pytestmark = pytest.mark.usefixtures("fresh_throttles")

URL = "/api/v1/projects/acme/web/environment"
SECRET = "hunter2-secret"


@pytest.fixture
def web_with_secret(world):
    production_group(world, variables={"MODE": "live"}, secrets={"DB_PASSWORD": SECRET})
    return world


def test_a_member_gets_the_spec_shape_with_secret_values_null(client, web_with_secret):
    client.force_login(web_with_secret.bob)
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
    assert (event.actor, event.user) == ("bob", web_with_secret.bob)


@pytest.mark.parametrize("who", ["org_admin", "superuser"])
def test_admins_and_superusers_get_null_for_every_secret_too(client, web_with_secret, who):
    """Secrets leave a session one at a time, through the audited reveal, never in bulk."""
    from django.contrib.auth.models import User

    user = web_with_secret.alice
    if who == "superuser":
        user = User.objects.create_superuser("root", password="root-password")
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json()["variables"] == {"DB_PASSWORD": None, "MODE": "live"}
    assert SECRET not in response.content.decode()


def test_an_admin_membership_without_staff_status_reads_only_the_members_projects(
    client, web_with_secret
):
    """Taking staff status away takes admin rights away: an admin role alone opens nothing."""
    from django.contrib.auth.models import User

    from orgenv.models import Membership

    dave = User.objects.create_user("dave", password="dave-password")
    Membership.objects.create(user=dave, organization=web_with_secret.acme, role="admin")
    client.force_login(dave)
    assert client.get(URL).status_code == 404
    web_with_secret.web.members.add(dave)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.json()["variables"]["DB_PASSWORD"] is None


def test_an_admin_of_another_organization_gets_404(client, web_with_secret):
    client.force_login(web_with_secret.charlie)
    response = client.get(URL)
    assert response.status_code == 404
    assert "detail" in response.json()
    assert not AuditEvent.objects.filter(kind="resolution").exists()


def test_a_member_gets_404_for_a_project_of_their_organization_they_do_not_belong_to(
    client, web_with_secret
):
    Project.objects.create(organization=web_with_secret.acme, slug="secret-lab", name="Lab")
    client.force_login(web_with_secret.bob)
    assert client.get("/api/v1/projects/acme/secret-lab/environment").status_code == 404
    assert client.get("/api/v1/projects/acme/no-such/environment").status_code == 404


def test_an_anonymous_caller_gets_403_with_a_json_detail(client, web_with_secret):
    response = client.get(URL)
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_project_token_does_not_open_the_member_endpoint(client, web_with_secret):
    from orgenv.tokens import token_issue

    _, raw = token_issue(project=web_with_secret.web, name="ci")
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
