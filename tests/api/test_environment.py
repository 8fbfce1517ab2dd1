"""The runner endpoint GET /api/v1/environment, over the Django test client (real HTTP
handling, real database): authentication, formats, ETag/304, access events, tenancy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from orgenv import crypto
from orgenv.models import AuditEvent, Project, ProjectToken, ProjectVariable, Team, Variable
from orgenv.tokens import token_issue
from tests.conftest import make_group, production_group

pytestmark = pytest.mark.usefixtures("fresh_throttles")

URL = "/api/v1/environment"
SECRET = "s3cr3t-db-password"
PUBLIC = "https://registry.example.com"


@dataclass
class Runner:
    token: ProjectToken
    raw: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.raw}", **extra}


@pytest.fixture
def runner(world) -> Runner:
    make_group(world.acme, "shared", access="all", variables={"REGISTRY": PUBLIC})
    production_group(world, secrets={"DB_PASSWORD": SECRET}, variables={"MODE": "group"})
    make_group(world.acme, "zeta", access="all", variables={"REGISTRY": "zeta-registry"})
    ProjectVariable.objects.create(project=world.web, name="MODE", value="project")
    return Runner(*token_issue(project=world.web, name="ci"))


def test_a_runner_gets_its_project_environment_in_the_spec_shape(client, runner):
    response = client.get(URL, **runner.headers())
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    event = AuditEvent.objects.get(kind="resolution")
    assert body == {
        "organization": "acme",
        "project": "web",
        "variables": {"DB_PASSWORD": SECRET, "MODE": "project", "REGISTRY": PUBLIC},
        "secrets": ["DB_PASSWORD"],
        "sources": {
            "DB_PASSWORD": "group:production",
            "MODE": "project",
            "REGISTRY": "group:shared",
        },
        "conflicts": [{"name": "REGISTRY", "winner": "group:shared", "shadowed": ["group:zeta"]}],
        "resolution_id": event.pk,
    }
    assert response["X-Orgenv-Resolution"] == str(event.pk)
    assert response["Cache-Control"] == "no-store"


def test_a_rotated_value_is_served_on_the_very_next_request(client, runner):
    client.get(URL, **runner.headers())
    variable = Variable.objects.get(name="DB_PASSWORD")
    variable.value = "rotated-password"
    variable.save()
    assert client.get(URL, **runner.headers()).json()["variables"]["DB_PASSWORD"] == (
        "rotated-password"
    )


def test_a_missing_token_gets_401_with_www_authenticate(client, runner):
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orgenv"'
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize(
    "header",
    [
        "Bearer oev_AAAAAAAAAAAA." + "x" * 43,
        "Bearer not-a-token",
        "Basic YWxpY2U6YWxpY2U=",
        "Bearer",
    ],
)
def test_an_invalid_token_gets_401_with_a_json_detail(client, runner, header):
    response = client.get(URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orgenv"'
    assert response.json()["detail"].startswith(("Invalid token", "Use 'Authorization: Bearer"))
    assert SECRET not in response.content.decode()


def test_a_known_prefix_with_a_wrong_secret_reads_as_just_an_invalid_token(client, runner):
    wrong = (
        runner.raw[:-4] + "AAAA" if not runner.raw.endswith("AAAA") else runner.raw[:-4] + "BBBB"
    )
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {wrong}")
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})


def test_it_rejects_an_expired_token_saying_so(client, runner):
    ProjectToken.objects.filter(pk=runner.token.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = client.get(URL, **runner.headers())
    assert response.status_code == 401
    assert response.json()["detail"] == (
        "This token has expired: ask an organization admin for a new one."
    )


def test_it_rejects_a_revoked_token_on_the_next_request(client, runner):
    assert client.get(URL, **runner.headers()).status_code == 200
    call_command("revoke_token", "acme/web", "--name", "ci", stdout=None)
    response = client.get(URL, **runner.headers())
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_an_error_is_json_even_when_a_text_format_was_asked_for(client, runner):
    response = client.get(URL + "?format=shell")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("name", ["token", "access_token"])
def test_a_token_in_the_query_string_is_refused_even_a_valid_one(client, runner, name):
    response = client.get(f"{URL}?{name}={runner.raw}")
    assert response.status_code == 400
    assert "Authorization header" in response.json()["detail"]
    assert SECRET not in response.content.decode()
    # ...also when the header is sent as well: the token has leaked into a URL.
    response = client.get(f"{URL}?{name}={runner.raw}", **runner.headers())
    assert response.status_code == 400
    assert AuditEvent.objects.filter(kind="resolution").count() == 0


def test_a_valid_token_sent_in_a_url_is_revoked_as_leaked(client, runner):
    response = client.get(f"{URL}?token={runner.raw}")
    assert "has been revoked" in response.json()["detail"]
    runner.token.refresh_from_db()
    assert runner.token.revoked_at is not None
    assert client.get(URL, **runner.headers()).status_code == 401
    revoked = AuditEvent.objects.get(kind="token_revoked")
    assert revoked.actor == f"token:{runner.token.prefix}"


def test_an_invalid_token_in_a_url_revokes_nothing(client, runner):
    response = client.get(f"{URL}?token={runner.raw[:-3]}xyz")
    assert response.status_code == 400
    assert "revoked" not in response.json()["detail"]
    assert client.get(URL, **runner.headers()).status_code == 200


def test_rejected_tokens_are_recorded_with_prefix_reason_address_and_agent(client, runner):
    runner.token.revoked_at = timezone.now()
    runner.token.save()
    client.get(URL, HTTP_USER_AGENT="ci-runner/1.0", REMOTE_ADDR="10.1.2.3", **runner.headers())
    client.get(URL, HTTP_AUTHORIZATION="Bearer garbage")
    client.get(URL + "?token=x")
    denied = list(AuditEvent.objects.filter(kind="resolution_denied").order_by("id"))
    assert [e.detail["reason"] for e in denied] == ["revoked", "malformed", "query_string"]
    revoked = denied[0]
    assert (revoked.token_prefix, revoked.token_id, revoked.project_id) == (
        runner.token.prefix,
        runner.token.pk,
        runner.token.project_id,
    )
    assert (revoked.address, revoked.user_agent) == ("10.1.2.3", "ci-runner/1.0")
    assert revoked.actor == f"token:{runner.token.prefix}"
    assert denied[1].token_prefix == "" and denied[1].actor == "anonymous"


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(client, runner, settings):
    spoof = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    client.get(URL, **runner.headers(**spoof))
    settings.ORGENV_TRUSTED_PROXIES = 1
    client.get(URL, **runner.headers(**spoof))
    addresses = list(
        AuditEvent.objects.filter(kind="resolution")
        .order_by("id")
        .values_list("address", flat=True)
    )
    assert addresses == ["10.0.0.1", "203.0.113.9"]


def test_the_dotenv_format_is_plain_text(client, runner):
    response = client.get(URL + "?format=dotenv", **runner.headers())
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == (
        f"DB_PASSWORD='{SECRET}'\nMODE='project'\nREGISTRY='{PUBLIC}'\n"
    )


def test_the_shell_format_is_export_lines(client, runner):
    response = client.get(URL + "?format=shell", **runner.headers())
    assert response.status_code == 200
    assert response.content.decode() == (
        f"export DB_PASSWORD='{SECRET}'\nexport MODE='project'\nexport REGISTRY='{PUBLIC}'\n"
    )


def test_an_unknown_format_gets_400_naming_the_allowed_ones(client, runner):
    response = client.get(URL + "?format=yaml", **runner.headers())
    assert response.status_code == 400
    assert response.json() == {
        "detail": "format: 'yaml' is not a format; use one of json, dotenv, shell."
    }


def test_a_matching_if_none_match_gets_304_without_body_or_decryption(client, runner):
    first = client.get(URL, **runner.headers())
    etag = first["ETag"]
    assert etag and client.get(URL, **runner.headers())["ETag"] == etag
    crypto.plaintexts.clear()
    response = client.get(URL, **runner.headers(HTTP_IF_NONE_MATCH=etag))
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    # nothing was decrypted, not even from the cache
    assert crypto.plaintexts.hits + crypto.plaintexts.misses == 0


def test_a_304_is_recorded_as_an_access_event(client, runner):
    etag = client.get(URL, **runner.headers())["ETag"]
    response = client.get(URL, **runner.headers(HTTP_IF_NONE_MATCH=f'"other", {etag}'))
    assert response.status_code == 304
    event = AuditEvent.objects.filter(kind="resolution").latest("id")
    assert response["X-Orgenv-Resolution"] == str(event.pk)
    assert event.detail == {"format": "json", "not_modified": True}
    assert event.sources == {
        "DB_PASSWORD": "group:production",
        "MODE": "project",
        "REGISTRY": "group:shared",
    }


def test_the_etag_changes_with_a_value_and_with_the_format(client, runner):
    etag = client.get(URL, **runner.headers())["ETag"]
    assert client.get(URL + "?format=shell", **runner.headers())["ETag"] != etag
    ProjectVariable.objects.get(name="MODE").delete()
    response = client.get(URL, **runner.headers(HTTP_IF_NONE_MATCH=etag))
    assert response.status_code == 200 and response["ETag"] != etag
    assert response.json()["variables"]["MODE"] == "group"


def test_renaming_the_project_changes_the_etag(client, runner, world):
    etag = client.get(URL, **runner.headers())["ETag"]
    Project.objects.filter(pk=world.web.pk).update(slug="website")
    response = client.get(URL, **runner.headers(HTTP_IF_NONE_MATCH=etag))
    assert response.status_code == 200 and response.json()["project"] == "website"


def test_each_resolution_writes_one_access_event_and_no_value_anywhere_in_it(client, runner):
    for fmt in ("json", "dotenv", "shell"):
        client.get(f"{URL}?format={fmt}", **runner.headers(HTTP_USER_AGENT="runner/2"))
    events = AuditEvent.objects.filter(kind="resolution")
    assert events.count() == 3
    event = events.earliest("id")
    assert (event.token_id, event.token_prefix, event.token_name) == (
        runner.token.pk,
        runner.token.prefix,
        "ci",
    )
    assert (event.organization_slug, event.project_slug) == ("acme", "web")
    assert event.actor == f"token:{runner.token.prefix}"
    assert (event.address, event.user_agent) == ("127.0.0.1", "runner/2")
    assert event.sources == {
        "DB_PASSWORD": "group:production",
        "MODE": "project",
        "REGISTRY": "group:shared",
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orgenv_auditevent")
        cells = [str(cell) for row in cursor.fetchall() for cell in row]
    for value in (SECRET, PUBLIC, "project-url", "zeta-registry"):
        assert not any(value in cell for cell in cells)


def refuse_audit_inserts(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    if sql.startswith('INSERT INTO "orgenv_auditevent"'):
        raise DatabaseError("the audit table is unavailable")
    return execute(sql, params, many, context)


def test_if_the_access_event_cannot_be_written_the_request_fails_without_secrets(client, runner):
    with connection.execute_wrapper(refuse_audit_inserts):
        response = client.get(URL, **runner.headers())
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "could not be resolved and recorded" in response.json()["detail"]
    assert SECRET not in response.content.decode() and PUBLIC not in response.content.decode()
    assert not AuditEvent.objects.filter(kind="resolution").exists()


@pytest.mark.parametrize("groups", [1, 30])
def test_a_resolution_runs_a_constant_number_of_queries(
    client, world, groups, django_assert_num_queries, django_capture_on_commit_callbacks
):
    team = Team.objects.create(organization=world.acme, slug="t")
    world.web.teams.add(team)
    for i in range(groups):
        make_group(
            world.acme,
            f"g{i:02}",
            teams=[team] if i % 2 else [],
            projects=[] if i % 2 else [world.web],
            priority=i % 3,
            variables={f"V{i}": "x", "SHARED": str(i)},
            secrets={f"S{i}": f"secret-{i}"},
        )
    ProjectVariable.objects.create(project=world.web, name="SHARED", value="p")
    token, raw = token_issue(project=world.web, name="ci")
    client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")  # sets last_used_at
    ProjectVariable.objects.create(project=world.web, name="LATE", value="new generation")
    # 0 the same answer as the last time, tried first: written only if the generation is
    #   the same (orgenv.audit.resolutions.repeat_record); it is not, so nothing is written
    # 1 the token with its project and organization (one join), the generation with it
    # 2 groups of the organization, with how each reaches the project
    # 3 the variables of the groups that reach it UNION ALL the project's, as tuples
    # 4 SAVEPOINT (the access event's transaction, nested in the test's)
    # 5-10 a new state's manifest: versions of the group variables, of the project
    #   variables, the lookup by digest, the insert in its own savepoint (3)
    # 11 INSERT of the access event, referencing the manifest
    # 12 RELEASE SAVEPOINT
    # (an UPDATE of last_used_at is added at most once a minute per token)
    with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(13):
        response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert len(response.json()["variables"]) == 2 * groups + 2
    # The same generation again, for the same token: this server answered it already. One
    # INSERT … SELECT checks the token and the generation and records the access event
    # (orgenv.audit.resolutions.repeat_record); the answer is the one rendered then.
    with django_assert_num_queries(1):
        again = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert again.json()["variables"] == response.json()["variables"]
    # Another token of the project reads its token and finds the layers kept and the
    # manifest known: 2, 3 and 5-10 are not run.
    other = token_issue(project=world.web, name="other")[1]
    client.get(URL, HTTP_AUTHORIZATION=f"Bearer {other}")  # sets last_used_at
    with django_assert_num_queries(4):
        client.get(URL + "?format=shell", HTTP_AUTHORIZATION=f"Bearer {other}")


def test_a_token_never_reads_another_project_or_organization(client, world):
    other = Project.objects.create(organization=world.acme, slug="other", name="Other")
    make_group(world.acme, "mine", projects=[world.web], variables={"MINE": "web-only"})
    make_group(world.acme, "theirs", projects=[other], secrets={"THEIRS": "other-secret"})
    make_group(world.globex, "globex-all", access="all", secrets={"GLOBEX": "globex-secret"})
    ProjectVariable.objects.create(project=other, name="OTHER_PROJECT", value="other-value")
    ProjectVariable.objects.create(
        project=world.globex_app, name="GLOBEX_PROJECT", value="globex-value"
    )
    _, raw = token_issue(project=world.web, name="ci")
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.json()["variables"] == {"MINE": "web-only"}
    # A query string naming another project changes nothing: the token decides.
    response = client.get(
        URL + "?project=other&organization=globex", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    body = response.content.decode()
    assert response.json()["project"] == "web"
    for value in ("other-secret", "globex-secret", "other-value", "globex-value"):
        assert value not in body


def test_a_rejected_token_still_gets_401_when_its_denial_cannot_be_recorded(client, runner):
    with connection.execute_wrapper(refuse_audit_inserts):
        response = client.get(URL, HTTP_AUTHORIZATION="Bearer oev_AAAAAAAAAAAA." + "x" * 43)
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})


def test_over_real_http_a_runner_gets_its_environment_then_a_304(live_server, transactional_db):
    import urllib.error
    import urllib.request

    from orgenv.models import Organization

    acme = Organization.objects.create(slug="acme", name="Acme")
    web = Project.objects.create(organization=acme, slug="web", name="Web")
    make_group(acme, "shared", access="all", secrets={"API_KEY": "live-secret"})
    _, raw = token_issue(project=web, name="live")
    url = f"{live_server.url}{URL}?format=shell"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {raw}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.read() == b"export API_KEY='live-secret'\n"
        etag = response.headers["ETag"]
    request.add_header("If-None-Match", etag)
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request, timeout=10)
    assert not_modified.value.code == 304
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{live_server.url}{URL}", timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"] == 'Bearer realm="orgenv"'


def test_the_decryption_cache_is_bounded_by_bytes_and_keeps_no_superseded_value(
    client, runner, world, settings
):
    """20 values of 64 KiB edited again and again once took a worker from 80 to 460 MB: the
    cache kept every plaintext ever decrypted, up to 65,536 entries whatever their size."""
    settings.DECRYPTION_CACHE_BYTES = 1024 * 1024
    big = make_group(world.acme, "big", access="all")
    crypto.plaintexts.clear()
    for round_ in range(5):
        for i in range(20):
            Variable.objects.update_or_create(
                group=big, name=f"BIG_{i}", defaults={"value": f"{round_}{i:02d}" * 16384}
            )
        body = client.get(URL, **runner.headers()).json()
        assert body["variables"]["BIG_7"] == f"{round_}07" * 16384
        assert crypto.plaintexts.bytes <= settings.DECRYPTION_CACHE_BYTES
        # One entry per current row at most: edited values replaced their old plaintexts.
        assert len(crypto.plaintexts) <= 20 + 4


def test_an_unchanged_value_is_decrypted_once_and_a_new_key_ring_empties_the_cache(
    client, runner, settings
):
    crypto.plaintexts.clear()
    crypto.answers.clear()
    client.get(URL, **runner.headers())
    misses = crypto.plaintexts.misses
    assert (misses, crypto.plaintexts.hits) == (3, 0)
    # The same state again: the answer this process rendered, nothing decrypted again.
    assert client.get(URL, **runner.headers()).json()["variables"]["DB_PASSWORD"] == SECRET
    assert (crypto.plaintexts.misses, crypto.plaintexts.hits) == (3, 0)
    assert crypto.answers.hits == 1
    # Another format renders anew, from the values decrypted once.
    assert SECRET in client.get(URL + "?format=shell", **runner.headers()).content.decode()
    assert (crypto.plaintexts.misses, crypto.plaintexts.hits) == (3, 3)
    settings.FERNET_KEYS = [*settings.FERNET_KEYS, crypto.Fernet.generate_key().decode()]
    assert len(crypto.plaintexts) == 0 and len(crypto.answers) == 0
