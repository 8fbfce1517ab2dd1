"""The authorization table: every URL of the product × every persona → the expected status,
and no secret value in any body. The URLs are found by walking the URL resolver, so a new URL
without a row here fails `test_every_url_has_a_row`.

Secrets leave only through the reveal (a POST, for an admin of that organization or a
superuser); every other answer, to anyone, is free of the seeded secret values.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from orgenv.models import (
    AuditEvent,
    ChangeRequest,
    Invitation,
    Membership,
    Organization,
    Project,
    ProjectToken,
    ProjectVariable,
    Team,
)
from orgenv.notifications.endpoints import endpoint_create
from orgenv.notifications.models import new_signing_secret
from tests.conftest import make_group

SECRET = "tbl-Secret-4f1c-never-in-a-body"
PROJECT_SECRET = "tbl-ProjectSecret-77aa-never-in-a-body"
GLOBEX_SECRET = "tbl-Globex-Secret-9e0d-never-in-a-body"
# A webhook's signing secret is shown once, in the answer to the POST that made it.
WEBHOOK_SECRET = new_signing_secret()
SECRETS = (SECRET, PROJECT_SECRET, GLOBEX_SECRET, WEBHOOK_SECRET)

PERSONAS = (
    "superuser",
    "org_admin",
    "staff_member",
    "admin_no_staff",
    "member_direct",
    "member_team",
    "outsider",
    "other_admin",
    "anonymous",
)


def walk(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += walk(pattern, route)
        else:
            assert isinstance(pattern, URLPattern)
            routes.append(route)
    return routes


# Statuses in PERSONAS order, and the shapes rows share. For an orgenv object of acme in the
# admin: acme's admins (and superusers) work on it; staff without an admin membership get 403
# (404 for history pages, which look the object up in their scoped list); globex's admin is
# sent away from an acme object (302 to the admin index: "does not exist"); everyone else is
# sent to the admin's sign-in.
ACME_OBJECT = "200 200 403 302 302 302 302 302 302"
ACME_HISTORY = "200 200 404 302 302 302 302 404 302"
ACME_LIST = "200 200 403 302 302 302 302 200 302"  # globex's admin sees only globex's rows
REDIRECT = "302 302 302 302 302 302 302 302 302"  # <id>/ → <id>/change/, checked there
SUPERUSER_ONLY = "200 403 403 302 302 302 302 403 302"  # Django model permissions
NOBODY = "403 403 403 302 302 302 302 403 302"  # read-only models: no add, no delete
SIGNED_IN = "200 200 200 200 200 200 200 200 302"
PUBLIC = "200 200 200 200 200 200 200 200 200"
ACME_ADMIN_PAGE = "200 200 404 404 404 404 404 404 302"
MEMBER_PAGE = "200 200 404 200 200 200 404 404 302"
# A page of acme's workspace in the admin: active staff pass the admin's door; then only
# acme's admins (and superusers), anyone else 404 as on the member pages.
ACME_WORKSPACE = "200 200 404 302 302 302 302 404 302"


def admin_model_rows(app: str, model: str, *, versions: bool = False, **shapes: str) -> dict:
    """The rows of one model admin; `versions`: simple-history's page of one past version."""
    shape = {
        "list": SUPERUSER_ONLY,
        "add": SUPERUSER_ONLY,
        "history": SUPERUSER_ONLY,
        "delete": SUPERUSER_ONLY,
        "change": SUPERUSER_ONLY,
        "redirect": REDIRECT,
    }
    if app == "orgenv":
        shape |= {
            "list": ACME_LIST,
            "add": ACME_LIST,
            "history": ACME_HISTORY,
            "delete": ACME_OBJECT,
            "change": ACME_OBJECT,
        }
    shape |= shapes
    base = f"admin/{app}/{model}/"
    rows = {
        base: shape["list"],
        base + "add/": shape["add"],
        base + "<path:object_id>/history/": shape["history"],
        base + "<path:object_id>/delete/": shape["delete"],
        base + "<path:object_id>/change/": shape["change"],
        base + "<path:object_id>/": shape["redirect"],
    }
    if versions:
        rows[base + "^([^/]+)/history/([^/]+)/$"] = shape["history"]
    return rows


TABLE: dict[str, str] = {
    # An admin of exactly one organization lands in its workspace (302); staff without an
    # admin membership get the (empty) index, a superuser picks among every organization.
    "admin/": "200 302 200 302 302 302 302 302 302",
    "admin/login/": "302 302 302 200 200 200 200 302 200",
    "admin/logout/": "405 405 405 302 302 302 302 405 302",  # a POST signs out
    "admin/password_change/": "200 200 200 302 302 302 302 200 302",
    "admin/password_change/done/": "200 200 200 302 302 302 302 200 302",
    "admin/autocomplete/": NOBODY,
    "admin/jsi18n/": "200 200 200 302 302 302 302 200 302",
    "admin/r/<path:content_type_id>/<path:object_id>/": "404 404 404 302 302 302 302 404 302",
    "admin/^(?P<app_label>auth|axes|otp_totp|otp_static|orgenv)/$": (
        "200 200 404 302 302 302 302 200 302"
    ),
    "admin/(?P<url>.*)$": "404 404 404 302 302 302 302 404 302",
    **admin_model_rows("auth", "group"),
    **admin_model_rows("auth", "user"),
    **admin_model_rows("axes", "accessattempt", add=NOBODY),
    **admin_model_rows("axes", "accessfailurelog", add=NOBODY),
    **admin_model_rows("axes", "accesslog", add=NOBODY),
    **admin_model_rows("otp_totp", "totpdevice"),
    **admin_model_rows("otp_static", "staticdevice"),
    **admin_model_rows(
        "orgenv", "organization", versions=True, add=SUPERUSER_ONLY, delete=SUPERUSER_ONLY
    ),
    **admin_model_rows("orgenv", "project", versions=True),
    **admin_model_rows("orgenv", "team", versions=True),
    **admin_model_rows("orgenv", "variablegroup", versions=True),
    **admin_model_rows("orgenv", "variable", versions=True),
    **admin_model_rows("orgenv", "projectvariable", versions=True),
    **admin_model_rows("orgenv", "projecttoken", versions=True),
    **admin_model_rows(
        "orgenv",
        "auditevent",
        add=NOBODY,
        delete=NOBODY,
        history="200 200 302 302 302 302 302 302 302",
    ),
    "admin/auth/user/<id>/password/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<int:pk>/config/": SUPERUSER_ONLY,
    "admin/otp_totp/totpdevice/<int:pk>/qrcode/": SUPERUSER_ONLY,
    "admin/orgs/<slug:org_slug>/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/projects/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/compare/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/people/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/tokens/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/audit/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/requests/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/requests/<int:pk>/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/webhooks/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/webhooks/add/": ACME_WORKSPACE,
    "admin/orgs/<slug:org_slug>/webhooks/<int:endpoint_id>/": ACME_WORKSPACE,
    # Its buttons are POSTs; a GET asks the remove question.
    "admin/orgs/<slug:org_slug>/webhooks/<int:endpoint_id>/do/": ACME_WORKSPACE.replace(
        "200", "405"
    ),
    "admin/orgs/<slug:org_slug>/webhooks/<int:endpoint_id>/delete/": ACME_WORKSPACE,
    # A GET asks for confirmation (the POST revokes); a GET shows the paste box.
    "admin/orgenv/projecttoken/<path:object_id>/revoke/": ACME_WORKSPACE,
    "admin/orgenv/variablegroup/<path:object_id>/paste/": ACME_WORKSPACE,
    "accounts/logout/": SIGNED_IN.replace("302", "200"),
    "accounts/login/code/": "302 302 302 302 302 302 302 302 302",  # no password given yet
    "accounts/two-factor/": SIGNED_IN,
    "accounts/two-factor/qr.svg": SIGNED_IN,
    "accounts/set-password/<uidb64>/<token>/": PUBLIC,  # a bad link: "already used or expired"
    "accounts/set-password/done/": PUBLIC,
    # The invitation is olga's (the outsider): she alone may answer it; once accepted, it is
    # no longer pending.
    "invitations/<int:pk>/accept/": "404 404 404 404 404 404 302 404 302",
    "invitations/<int:pk>/decline/": "404 404 404 404 404 404 404 404 302",
    "accounts/login/": PUBLIC,
    "accounts/reauth/": SIGNED_IN,
    "accounts/password_change/": SIGNED_IN,
    "accounts/password_change/done/": SIGNED_IN,
    "api/schema/": PUBLIC,
    "api/docs/": PUBLIC,
    "api/v1/environment": "401 401 401 401 401 401 401 401 401",
    "api/v1/projects/<slug:org>/<slug:project>/environment": MEMBER_PAGE.replace("302", "403"),
    "api/v1/projects/<slug:org>/<slug:project>/why/<str:name>": MEMBER_PAGE.replace("302", "403"),
    "api/v1/projects/<slug:org>/<slug:project>/secrets/<str:name>/reveal": (
        "200 200 404 403 403 403 404 404 403"
    ),
    "": SIGNED_IN,
    "orgs/<slug:org>/projects/<slug:project>/environment/": MEMBER_PAGE,
    "orgs/<slug:org>/audit/": ACME_ADMIN_PAGE,
    "orgs/<slug:org>/audit.csv": ACME_ADMIN_PAGE,
    "orgs/<slug:org>/grants/": ACME_ADMIN_PAGE,
    "orgs/<slug:org>/audit/exposure/": ACME_ADMIN_PAGE,
    "orgs/<slug:org>/hygiene/": ACME_ADMIN_PAGE,
    # Probes for load balancers: no token, no session needed, nothing about values.
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    # Only the METRICS_TOKEN as a Bearer token opens the metrics; a session does not.
    "metrics": "401 401 401 401 401 401 401 401 401",
}
# Sent as a POST (with a reason): the reveal is the one door secrets leave by.
POSTS = {
    "api/v1/projects/<slug:org>/<slug:project>/secrets/<str:name>/reveal",
    "invitations/<int:pk>/accept/",
    "invitations/<int:pk>/decline/",
}


def test_every_url_has_a_row():
    routes = walk(get_resolver())
    missing = sorted(set(routes) - set(TABLE))
    assert not missing, "URLs without a row in the authorization table:\n" + "\n".join(missing)
    stale = sorted(set(TABLE) - set(routes))
    assert not stale, "rows for URLs that no longer exist:\n" + "\n".join(stale)


@pytest.fixture
def objects(db) -> dict:
    acme = Organization.objects.create(slug="acme", name="Acme ML")
    globex = Organization.objects.create(slug="globex", name="Globex")
    make = User.objects.create_user
    users = {
        "superuser": User.objects.create_superuser("root", password="pw"),
        "org_admin": make("alice", password="pw", is_staff=True),
        "staff_member": make("stan", password="pw", is_staff=True),
        "admin_no_staff": make("nora", password="pw"),
        "member_direct": make("bob", password="pw"),
        "member_team": make("tess", password="pw"),
        "outsider": make("olga", password="pw"),
        "other_admin": make("charlie", password="pw", is_staff=True),
    }
    for key, role, org in [
        ("org_admin", "admin", acme),
        ("staff_member", "member", acme),
        ("admin_no_staff", "admin", acme),
        ("member_direct", "member", acme),
        ("member_team", "member", acme),
        ("other_admin", "admin", globex),
    ]:
        Membership.objects.create(user=users[key], organization=org, role=role)
    web = Project.objects.create(organization=acme, slug="web", name="Web")
    web.members.add(users["member_direct"], users["admin_no_staff"])
    team = Team.objects.create(organization=acme, slug="ml")
    team.members.add(users["member_team"])
    web.teams.add(team)
    group = make_group(acme, "production", projects=[web], secrets={"DB_PASSWORD": SECRET})
    project_variable = ProjectVariable.objects.create(
        project=web, name="LOCAL_SECRET", value=PROJECT_SECRET, is_secret=True
    )
    globex_app = Project.objects.create(organization=globex, slug="app", name="App")
    make_group(globex, "payments", projects=[globex_app], secrets={"STRIPE": GLOBEX_SECRET})
    token = ProjectToken.objects.create(project=web, name="ci", prefix="abcd1234", digest="0" * 64)
    event = AuditEvent.objects.create(kind=AuditEvent.Kind.CONFIG_APPLIED, organization=acme)
    invitation = Invitation.objects.create(
        organization=acme, username="olga", invited_by=users["org_admin"]
    )
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    per_model = {
        ("auth", "group"): Group.objects.create(name="operators"),
        ("auth", "user"): users["member_direct"],
        ("axes", "accessattempt"): AccessAttempt.objects.create(
            username="bob",
            ip_address="10.0.0.1",
            user_agent="x",
            failures_since_start=1,
            get_data="",
            post_data="",
            path_info="/accounts/login/",
            http_accept="*/*",
        ),
        ("axes", "accessfailurelog"): AccessFailureLog.objects.create(
            username="bob",
            ip_address="10.0.0.1",
            user_agent="x",
            path_info="/",
            http_accept="*/*",
        ),
        ("axes", "accesslog"): AccessLog.objects.create(
            username="bob",
            ip_address="10.0.0.1",
            user_agent="x",
            path_info="/",
            http_accept="*/*",
        ),
        ("otp_totp", "totpdevice"): TOTPDevice.objects.create(
            user=users["outsider"], name="app", confirmed=False
        ),
        ("otp_static", "staticdevice"): StaticDevice.objects.create(
            user=users["outsider"], name="backup", confirmed=False
        ),
        ("orgenv", "organization"): acme,
        ("orgenv", "project"): web,
        ("orgenv", "team"): team,
        ("orgenv", "variablegroup"): group,
        ("orgenv", "variable"): group.variables.get(),
        ("orgenv", "projectvariable"): project_variable,
        ("orgenv", "projecttoken"): token,
        ("orgenv", "auditevent"): event,
    }
    change_request = ChangeRequest.objects.create(
        organization=acme,
        group=group,
        group_name=group.name,
        author=users["org_admin"],
        author_name="alice",
        base_version="0.0",
    )
    webhook, _ = endpoint_create(
        organization=acme,
        name="deploy",
        url="https://hooks.example.com/x",
        events=["webhook.test"],
        secret=WEBHOOK_SECRET,
    )
    return {
        "users": users,
        "per_model": per_model,
        "invitation": invitation,
        "change_request": change_request,
        "webhook": webhook,
    }


def url_for(route: str, objects: dict) -> str:
    admin_model = re.match(r"admin/(\w+)/(\w+)/", route)
    obj = None
    if admin_model and (admin_model[1], admin_model[2]) in objects["per_model"]:
        obj = objects["per_model"][(admin_model[1], admin_model[2])]
    url = route
    if "^([^/]+)/history/([^/]+)/$" in url:
        history_id = obj.history.latest().history_id
        url = url.replace("^([^/]+)/history/([^/]+)/$", f"{obj.pk}/history/{history_id}/")
    if route.startswith("invitations/"):
        obj = objects["invitation"]
    if route.startswith("admin/orgs/<slug:org_slug>/requests/<int:pk>/"):
        obj = objects["change_request"]
    object_id = str(obj.pk) if obj is not None else ""
    replacements = {
        "<path:object_id>": object_id,
        "<int:pk>": object_id,
        "<id>": object_id,
        "<slug:org_slug>": "acme",
        "<uidb64>/<token>": "MQ/bad-token",
        "<path:content_type_id>": "1",
        "^(?P<app_label>auth|axes|otp_totp|otp_static|orgenv)/$": "orgenv/",
        "(?P<url>.*)$": "no-such-page/",
        "<slug:org>": "acme",
        "<slug:project>": "web",
        "<str:name>": "DB_PASSWORD",
        "<int:endpoint_id>": str(objects["webhook"].pk),
    }
    for placeholder, value in replacements.items():
        url = url.replace(placeholder, value)
    return "/" + url


def request(client: Client, route: str, url: str):
    if route in POSTS:
        body = json.dumps({"reason": "authorization table"})
        return client.post(url, body, content_type="application/json")
    return client.get(url)


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_url_answers_each_persona_as_the_table_says(objects, persona):
    client = Client()
    if persona != "anonymous":
        client.force_login(objects["users"][persona])
    column = PERSONAS.index(persona)
    wrong = []
    for route in walk(get_resolver()):
        if route not in TABLE:
            continue  # test_every_url_has_a_row names it
        url = url_for(route, objects)
        response = request(client, route, url)
        expected = int(TABLE[route].split()[column])
        if response.status_code != expected:
            wrong.append(f"{url}: {response.status_code}, expected {expected}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        revealed = route in POSTS and response.status_code == 200
        for secret in SECRETS:
            if secret.encode() in body and not (revealed and secret == SECRET):
                wrong.append(f"{url}: a secret value is in the body")
        if persona != "anonymous" and route in ("admin/logout/", "accounts/logout/"):
            client.force_login(objects["users"][persona])  # signed out: sign in again
    assert not wrong, f"{persona}:\n" + "\n".join(wrong)
