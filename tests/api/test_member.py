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
    assert (event.actor, event.user, event.detail) == (
        "bob",
        web_with_secret.bob,
        {"secrets_shown": False},
    )


def test_an_organization_admin_gets_the_secret_values(client, web_with_secret):
    client.force_login(web_with_secret.alice)
    response = client.get(URL)
    assert response.json()["variables"]["DB_PASSWORD"] == SECRET
    assert AuditEvent.objects.get(kind="resolution").detail == {"secrets_shown": True}


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
