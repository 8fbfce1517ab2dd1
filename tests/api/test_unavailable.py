"""With the database or the cache unreachable, the API answers a JSON 503 with Retry-After
and no-store (it answered an HTML 500 a proxy could keep); a bug is still a 500."""

from __future__ import annotations

import pytest
from django.db import OperationalError, ProgrammingError, connection

from orgenv.tokens import token_issue

URL = "/api/v1/environment"


@pytest.fixture
def raw(world) -> str:
    return token_issue(project=world.web, name="ci")[1]


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert "try again" in response.json()["detail"]


def database_down(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
    # What psycopg and sqlite3 raise, through Django, when the server is gone.
    raise OperationalError("server closed the connection unexpectedly")


def test_a_runner_gets_503_when_the_database_is_down(client, raw):
    with connection.execute_wrapper(database_down):
        response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert_unavailable(response)


def test_a_member_gets_503_when_the_database_is_down(client, world):
    client.force_login(world.bob)
    with connection.execute_wrapper(database_down):
        response = client.get("/api/v1/projects/acme/web/environment")
    assert_unavailable(response)


def test_a_runner_gets_503_when_the_cache_is_down(client, raw, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    assert_unavailable(client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}"))


def test_a_failure_that_is_not_an_outage_is_still_a_500(client, raw):
    def broken(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "orgenv_auditevent" in sql:
            raise ProgrammingError('column "x" does not exist')
        return execute(sql, params, many, context)

    with connection.execute_wrapper(broken):
        response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 500
    assert response["Cache-Control"] == "no-store"
    assert "resolved and recorded" in response.json()["detail"]


@pytest.mark.parametrize("fmt", ["json", "dotenv", "shell"])
def test_options_describes_the_endpoint_in_json_whatever_the_format(client, raw, fmt):
    """OPTIONS ?format=dotenv answered 500 (KeyError: the text renderer got no variables)."""
    response = client.options(f"{URL}?format={fmt}", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["name"]
