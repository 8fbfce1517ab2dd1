"""429s: per token, per signed-in member, and per address after failed authentication."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import Client

from orgenv.tokens import token_issue

URL = "/api/v1/environment"


@pytest.fixture(autouse=True)
def low_rates(settings):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min", "auth_failure": "2/min", "member": "2/min"},
    }
    yield
    cache.clear()


@pytest.fixture
def raw(world) -> str:
    return token_issue(project=world.web, name="ci")[1]


def bearer(raw: str, address: str = "127.0.0.1") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}", "REMOTE_ADDR": address}


def test_a_token_over_its_rate_gets_429_with_retry_after(client, raw, world):
    assert [client.get(URL, **bearer(raw)).status_code for _ in range(3)] == [200] * 3
    response = client.get(URL, **bearer(raw))
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()
    # Another token of the same project has its own budget.
    other = token_issue(project=world.web, name="other")[1]
    assert client.get(URL, **bearer(other)).status_code == 200


def test_a_304_counts_against_the_token_rate_too(client, raw):
    etag = client.get(URL, **bearer(raw))["ETag"]
    statuses = [
        client.get(URL, HTTP_IF_NONE_MATCH=etag, **bearer(raw)).status_code for _ in range(3)
    ]
    assert statuses == [304, 304, 429]


def test_an_address_with_too_many_failures_gets_429_even_with_a_valid_token(client, raw):
    for _ in range(2):
        assert client.get(URL, **bearer("oev_AAAAAAAAAAAA." + "x" * 43)).status_code == 401
    refused = client.get(URL, **bearer(raw))
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Bearer" not in refused.content.decode()
    # Another address is not affected.
    assert client.get(URL, **bearer(raw, "10.9.9.9")).status_code == 200


def test_a_token_in_the_query_string_counts_as_a_failure(client, raw):
    for _ in range(2):
        assert client.get(f"{URL}?token={raw}").status_code == 400
    assert client.get(URL, **bearer(raw)).status_code == 429


def test_missing_tokens_are_not_counted_as_failures(client, raw):
    for _ in range(5):
        assert client.get(URL).status_code == 401
    assert client.get(URL, **bearer(raw)).status_code == 200


def test_the_failure_window_passes(client, raw, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100/min", "auth_failure": "1/s", "member": "9/s"},
    }
    assert client.get(URL, **bearer("oev_AAAAAAAAAAAA." + "x" * 43)).status_code == 401
    assert client.get(URL, **bearer(raw)).status_code == 429
    time.sleep(1.1)
    assert client.get(URL, **bearer(raw)).status_code == 200


def test_a_member_over_the_member_rate_gets_429(client, world):
    client.force_login(world.bob)
    url = "/api/v1/projects/acme/web/environment"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    client.force_login(world.alice)
    assert client.get(url).status_code == 200


@pytest.fixture
def redis_cache(settings):
    """The shared Redis at 127.0.0.1:6379 under a key prefix of this test alone (Redis is
    shared with other test sessions: nothing here flushes it)."""
    prefix = f"orgenv-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": prefix,
        }
    }
    yield
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


def at_once(count: int, request: Callable[[Client], int]) -> list[int]:
    """`count` requests released together by a barrier, each from its own thread (and its own
    database connection); their status codes."""
    barrier = threading.Barrier(count)

    def one(_: int) -> int:
        client = Client()
        barrier.wait()
        try:
            return request(client)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_pass_the_token_rate_with_redis(redis_cache, raw):
    statuses = at_once(12, lambda client: client.get(URL, **bearer(raw)).status_code)
    assert sorted(statuses) == [200] * 3 + [429] * 9


@pytest.mark.django_db(transaction=True)
def test_concurrent_bad_tokens_never_pass_the_failure_limit_with_redis(redis_cache, raw):
    bad = "oev_AAAAAAAAAAAA." + "x" * 43
    statuses = at_once(10, lambda client: client.get(URL, **bearer(bad)).status_code)
    assert sorted(statuses) == [401] * 2 + [429] * 8
    assert Client().get(URL, **bearer(raw)).status_code == 429
