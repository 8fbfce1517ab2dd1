"""Reveal (SPEC "Secret exposure"): one value, to an admin of that organization, with a
recent password and a reason, recorded as a `secret_revealed` event that never holds it."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from orgenv.accounts.freshness import PASSWORD_AT
from orgenv.models import AuditEvent, Membership, ProjectVariable
from tests.conftest import make_group

SECRET = "hunter2-reveal-me"
URL = "/api/v1/projects/acme/web/secrets/DB_PASSWORD/reveal"


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


def signed_in(user: User, password: str, **kwargs) -> Client:
    """Signed in through the password, as a person would (which counts as a fresh entry)."""
    client = Client(**kwargs)
    if kwargs.get("enforce_csrf_checks"):
        client.get("/accounts/login/")
        kwargs = {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    else:
        kwargs = {}
    response = client.post(
        "/accounts/login/", {"username": user.username, "password": password, **kwargs}
    )
    assert response.status_code == 302, response.content
    return client


def post(client: Client, url: str = URL, body: object = None, **kwargs):
    body = {"reason": "debugging the nightly job"} if body is None else body
    return client.post(url, json.dumps(body), content_type="application/json", **kwargs)


def age_password_entry(client: Client, seconds: float) -> None:
    session = client.session
    session[PASSWORD_AT] = time.time() - seconds
    session.save()


def test_an_org_admin_reveals_a_secret_and_the_event_records_who_what_and_why(seeded, caplog):
    caplog.set_level(logging.DEBUG)
    client = signed_in(seeded.alice, "alice-password")
    response = post(client, HTTP_USER_AGENT="pytest-agent")
    assert response.status_code == 200
    event = AuditEvent.objects.get(kind="secret_revealed")
    assert response.json() == {
        "name": "DB_PASSWORD",
        "value": SECRET,
        "source": "group:production",
        "event": event.pk,
    }
    assert response["Cache-Control"] == "no-store"
    assert (event.actor, event.user, event.project, event.organization) == (
        "alice",
        seeded.alice,
        seeded.web,
        seeded.acme,
    )
    assert event.detail == {
        "name": "DB_PASSWORD",
        "source": "group:production",
        "secret": True,
        "reason": "debugging the nightly job",
    }
    assert event.variables == {"DB_PASSWORD": "group:production"}
    assert event.address == "127.0.0.1" and event.user_agent == "pytest-agent"
    stored = json.dumps([list(row) for row in AuditEvent.objects.values_list()], default=str)
    assert SECRET not in stored
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_the_effective_value_is_revealed_a_project_override_winning(seeded):
    ProjectVariable.objects.create(
        project=seeded.web, name="DB_PASSWORD", value="project-wins", is_secret=True
    )
    response = post(signed_in(seeded.alice, "alice-password"))
    assert (response.json()["value"], response.json()["source"]) == ("project-wins", "project")


def test_a_superuser_reveals_too(seeded):
    root = User.objects.create_superuser("root", password="root-password")
    assert post(signed_in(root, "root-password")).json()["value"] == SECRET


def test_a_stale_password_entry_gets_403_naming_the_reauth_page_then_reauth_opens_it(seeded):
    client = signed_in(seeded.alice, "alice-password")
    age_password_entry(client, 601)
    response = post(client)
    assert response.status_code == 403
    assert response.json()["reauth_url"] == "/accounts/reauth/"
    assert SECRET not in response.content.decode()
    assert not AuditEvent.objects.filter(kind="secret_revealed").exists()

    page = client.get("/accounts/reauth/?next=/orgs/acme/projects/web/environment/")
    assert page.status_code == 200 and b"Confirm it is you" in page.content
    wrong = client.post("/accounts/reauth/", {"password": "nope", "next": "/"})
    assert wrong.status_code == 200 and b"This is not your password" in wrong.content
    assert post(client).status_code == 403
    done = client.post(
        "/accounts/reauth/",
        {"password": "alice-password", "next": "/orgs/acme/projects/web/environment/"},
    )
    assert done.status_code == 302
    assert done["Location"] == "/orgs/acme/projects/web/environment/"
    assert post(client).json()["value"] == SECRET


def test_reauth_never_redirects_to_another_site(seeded):
    client = signed_in(seeded.alice, "alice-password")
    done = client.post(
        "/accounts/reauth/", {"password": "alice-password", "next": "https://evil.example/"}
    )
    assert done["Location"] == "/"


def test_the_window_follows_the_setting(seeded, settings):
    settings.REVEAL_REAUTH_SECONDS = 30
    client = signed_in(seeded.alice, "alice-password")
    age_password_entry(client, 31)
    assert post(client).status_code == 403
    age_password_entry(client, 20)
    assert post(client).status_code == 200


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 7}, []])
def test_a_missing_or_empty_reason_gets_400(seeded, body):
    response = post(signed_in(seeded.alice, "alice-password"), body=body)
    assert response.status_code == 400
    assert "reason" in response.json()["detail"]
    assert not AuditEvent.objects.filter(kind="secret_revealed").exists()


def test_a_member_of_the_project_gets_403_and_no_value(seeded):
    response = post(signed_in(seeded.bob, "bob-password"))
    assert response.status_code == 403
    assert SECRET not in response.content.decode()


def test_an_admin_membership_without_staff_status_cannot_reveal(seeded):
    dave = User.objects.create_user("dave", password="dave-password")
    Membership.objects.create(user=dave, organization=seeded.acme, role="admin")
    client = signed_in(dave, "dave-password")
    assert post(client).status_code == 404
    seeded.web.members.add(dave)
    assert post(client).status_code == 403


def test_an_admin_of_another_organization_gets_404(seeded):
    assert post(signed_in(seeded.charlie, "charlie-password")).status_code == 404


def test_an_anonymous_caller_gets_403(seeded):
    assert post(Client()).status_code == 403


def test_a_name_that_does_not_reach_the_project_gets_404(seeded):
    client = signed_in(seeded.alice, "alice-password")
    response = post(client, url=URL.replace("DB_PASSWORD", "NOPE"))
    assert response.status_code == 404
    assert "NOPE" in response.json()["detail"]


def test_the_post_needs_the_csrf_token(seeded):
    client = signed_in(seeded.alice, "alice-password", enforce_csrf_checks=True)
    response = post(client)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get("/orgs/acme/projects/web/environment/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert post(client, HTTP_X_CSRFTOKEN=token).status_code == 200


def test_a_get_is_refused(seeded):
    assert signed_in(seeded.alice, "alice-password").get(URL).status_code == 405


def test_reveals_are_rate_limited_per_user(seeded, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "reveal": "2/hour",
        },
    }
    client = signed_in(seeded.alice, "alice-password")
    assert [post(client).status_code for _ in range(3)] == [200, 200, 429]
    assert AuditEvent.objects.filter(kind="secret_revealed").count() == 2


def test_the_schema_documents_the_reveal(client, db):
    schema = client.get("/api/schema/?format=json").json()
    reveal = schema["paths"]["/api/v1/projects/{org}/{project}/secrets/{name}/reveal"]["post"]
    assert set(reveal["responses"]) >= {"200", "400", "403", "404", "429"}
    assert "reason" in schema["components"]["schemas"]["RevealRequest"]["properties"]
