"""The runner endpoint served lean (orgenv.api.runner) answers exactly as the DRF view behind
the whole middleware stack does — status, every header, body — and a revalidation is one
statement that never vouches for a token or a state that changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.db import DatabaseError, OperationalError, connection
from django.test import Client
from django.utils import timezone

from orgenv.api.throttling import TokenRateThrottle
from orgenv.models import AuditEvent, ProjectToken, ProjectVariable
from orgenv.tokens import token_issue, token_revoke
from tests.conftest import make_group

pytestmark = pytest.mark.usefixtures("fresh_throttles")

URL = "/api/v1/environment"
LEAN = "orgenv.api.runner.RunnerEndpoint"


@pytest.fixture
def raw(world) -> str:
    make_group(world.acme, "shared", access="all", variables={"REGISTRY": "r"}, secrets={"S": "s"})
    ProjectVariable.objects.create(project=world.web, name="MODE", value='it\'s \u2028 "x"')
    return token_issue(project=world.web, name="ci")[1]


@pytest.fixture
def whole_stack(settings) -> Callable[[], Client]:
    """A client whose requests go through every middleware to the DRF view."""

    def make() -> Client:
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != LEAN]
        return Client()

    return make


def answer(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k != "X-Orgenv-Resolution"}
    body: Any = response.content
    if headers.get("Content-Type") == "application/json":
        body = json.loads(body)
        if isinstance(body, dict):
            body.pop("resolution_id", None)
    return response.status_code, headers, body


def refuse_audit_inserts(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
    if sql.startswith('INSERT INTO "orgenv_auditevent"'):
        raise DatabaseError("the audit table is unavailable")
    return execute(sql, *args)


def database_down(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
    raise OperationalError("server closed the connection unexpectedly")


CASES: dict[str, dict[str, str]] = {
    "json": {},
    "dotenv": {"QUERY_STRING": "format=dotenv"},
    "shell": {"QUERY_STRING": "format=shell"},
    "unknown format": {"QUERY_STRING": "format=yaml"},
    "no token": {"HTTP_AUTHORIZATION": ""},
    "not bearer": {"HTTP_AUTHORIZATION": "Basic YWxpY2U6YWxpY2U="},
    "malformed": {"HTTP_AUTHORIZATION": "Bearer not-a-token"},
    "unknown": {"HTTP_AUTHORIZATION": "Bearer oev_AAAAAAAAAAAA." + "x" * 43},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_view_answers_as_the_drf_view(client, raw, whole_stack, case):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_USER_AGENT": "ci/1", **CASES[case]}
    query = extra.pop("QUERY_STRING", "")
    url = f"{URL}?{query}" if query else URL
    lean = answer(client.get(url, **extra))
    cache.clear()
    assert answer(whole_stack().get(url, **extra)) == lean
    assert lean[1]["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "how", ["revalidated", "revoked", "expired", "throttled", "unrecorded", "database down"]
)
def test_the_lean_view_answers_as_the_drf_view_when(
    client, raw, world, settings, how, whole_stack, monkeypatch
):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    etag = client.get(URL, **headers)["ETag"]
    if how == "revalidated":
        headers["HTTP_IF_NONE_MATCH"] = etag
    elif how == "revoked":
        token_revoke(token=ProjectToken.objects.get())
    elif how == "expired":
        ProjectToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif how == "throttled":
        # One clock for both answers: Retry-After and the detail count the window's seconds.
        monkeypatch.setattr(TokenRateThrottle, "timer", lambda self: 1_800_000_000.5)
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"token": "1/min", "auth_failure": "9/min"},
        }
    wrapper = {"unrecorded": refuse_audit_inserts, "database down": database_down}.get(how)

    def both(make: Callable[[], Client]) -> tuple[int, dict[str, str], Any]:
        cache.clear()
        runner = make()
        if how == "throttled":
            runner.get(URL, **headers)
        if wrapper is None:
            return answer(runner.get(URL, **headers))
        with connection.execute_wrapper(wrapper):
            return answer(runner.get(URL, **headers))

    lean = both(Client)
    assert lean == both(whole_stack)
    expected = {
        "revalidated": 304,
        "revoked": 401,
        "expired": 401,
        "throttled": 429,
        "unrecorded": 500,
        "database down": 503,
    }
    assert lean[0] == expected[how]


@pytest.fixture
def revalidation(client, raw) -> dict[str, str]:
    """Headers that revalidate what the server just answered, last_used_at fresh."""
    etag = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")["ETag"]
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_IF_NONE_MATCH": etag}


def test_a_revalidation_is_one_statement_and_its_event_a_full_record(
    client, revalidation, django_assert_num_queries
):
    with django_assert_num_queries(1):  # INSERT … SELECT: checks the token and records
        response = client.get(URL, REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="ci/2", **revalidation)
    assert response.status_code == 304
    event = AuditEvent.objects.get(pk=response["X-Orgenv-Resolution"])
    first = AuditEvent.objects.filter(kind="resolution").earliest("id")
    assert (event.kind, event.actor, event.token_id, event.token_name) == (
        "resolution",
        first.actor,
        first.token_id,
        "ci",
    )
    assert (event.organization_id, event.organization_slug, event.project_slug) == (
        first.organization_id,
        "acme",
        "web",
    )
    assert (event.address, event.user_agent, event.manifest_id) == (
        "10.1.2.3",
        "ci/2",
        first.manifest_id,
    )
    assert event.detail == {"format": "json", "not_modified": True}
    assert event.sources == first.sources


def test_a_revalidation_with_a_wrong_secret_is_refused(client, revalidation, raw):
    wrong = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    response = client.get(URL, **{**revalidation, "HTTP_AUTHORIZATION": f"Bearer {wrong}"})
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})
    assert AuditEvent.objects.filter(kind="resolution").count() == 1


@pytest.mark.parametrize("change", ["revoke", "expire"])
def test_a_revalidation_after_the_token_went_is_refused(client, revalidation, change):
    if change == "revoke":
        token_revoke(token=ProjectToken.objects.get())
    else:
        ProjectToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(URL, **revalidation).status_code == 401
    assert AuditEvent.objects.filter(kind="resolution").count() == 1


def test_a_revalidation_after_a_change_gets_the_new_environment(client, revalidation, world):
    ProjectVariable.objects.create(project=world.web, name="LATE", value="new")
    response = client.get(URL, **revalidation)
    assert response.status_code == 200
    assert response.json()["variables"]["LATE"] == "new"
    assert response["ETag"] != revalidation["HTTP_IF_NONE_MATCH"]


def test_a_revalidation_renews_last_used_at_the_long_way(client, revalidation):
    ProjectToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=5))
    assert client.get(URL, **revalidation).status_code == 304
    assert timezone.now() - ProjectToken.objects.get().last_used_at < timedelta(minutes=1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("again", [True, False], ids=["same answer again", "another token"])
def test_a_kept_connection_that_broke_costs_the_runner_nothing(world, again):
    """No health-check round trip before the runner's first statement
    (orgenv.selectors.statements.unchecked): a connection that broke while kept is replaced
    when that statement fails, as the health check would have replaced it."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite connections have no health check to skip")
    make_group(world.acme, "shared", access="all", secrets={"S": "s3cret"})
    first, second = (token_issue(project=world.web, name=n)[1] for n in ("a", "b"))
    client = Client()
    kept = {**connection.settings_dict, "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}
    original, connection.settings_dict = connection.settings_dict, kept
    try:
        connection.close()
        assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 200
        if not again:
            assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200
        broken = connection.connection
        assert broken is not None  # kept between requests
        broken.close()  # as a restarted server or a dropped link would leave it
        # What Django does as each request starts (its test client leaves it out): the kept
        # connection is to be health-checked before its first query.
        connection.close_if_unusable_or_obsolete()
        raw = first if again else second
        response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200 and response.json()["variables"] == {"S": "s3cret"}
        assert connection.connection is not broken
    finally:
        connection.close()
        connection.settings_dict = original
