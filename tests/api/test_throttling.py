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
def low_rates(settings, fresh_throttles):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min", "auth_failure": "2/min", "member": "2/min"},
    }


@pytest.fixture
def raw(world) -> str:
    return token_issue(project=world.web, name="ci")[1]


def bearer(raw: str, address: str = "127.0.0.1") -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}", "REMOTE_ADDR": address}


@pytest.fixture(params=["local-memory", "redis"])
def counting_cache(request) -> str | None:
    """The tests that take it run twice: counting in the local-memory cache, and in the
    shared Redis (one script per request, orgenv.api.throttling); the Redis key prefix or
    None."""
    if request.param == "redis":
        return request.getfixturevalue("redis_cache")
    return None


def test_a_token_over_its_rate_gets_429_with_retry_after(client, raw, world, counting_cache):
    assert [client.get(URL, **bearer(raw)).status_code for _ in range(3)] == [200] * 3
    response = client.get(URL, **bearer(raw))
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()
    # Another token of the same project has its own budget.
    other = token_issue(project=world.web, name="other")[1]
    assert client.get(URL, **bearer(other)).status_code == 200


def test_a_304_counts_against_the_token_rate_too(client, raw, counting_cache):
    etag = client.get(URL, **bearer(raw))["ETag"]
    statuses = [
        client.get(URL, HTTP_IF_NONE_MATCH=etag, **bearer(raw)).status_code for _ in range(3)
    ]
    assert statuses == [304, 304, 429]


def test_an_address_with_too_many_failures_gets_429_even_with_a_valid_token(
    client, raw, counting_cache
):
    for _ in range(2):
        assert client.get(URL, **bearer("oev_AAAAAAAAAAAA." + "x" * 43)).status_code == 401
    refused = client.get(URL, **bearer(raw))
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Bearer" not in refused.content.decode()
    # Another address is not affected.
    assert client.get(URL, **bearer(raw, "10.9.9.9")).status_code == 200


def test_an_answer_given_again_is_refused_too_once_the_address_fails(client, raw, counting_cache):
    etag = client.get(URL, **bearer(raw))["ETag"]  # remembered: the next ones are repeats
    assert client.get(URL, HTTP_IF_NONE_MATCH=etag, **bearer(raw)).status_code == 304
    for _ in range(2):
        assert client.get(URL, **bearer("oev_AAAAAAAAAAAA." + "x" * 43)).status_code == 401
    for headers in ({}, {"HTTP_IF_NONE_MATCH": etag}):
        refused = client.get(URL, **headers, **bearer(raw))
        assert refused.status_code == 429
    # Refusals at the address counted nothing against the token: its third request passes.
    assert client.get(URL, **bearer(raw, "10.9.9.9")).status_code == 200
    assert client.get(URL, **bearer(raw, "10.9.9.9")).status_code == 429


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
    yield prefix
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


def redis_commands(prefix: str, during: Callable[[], object]) -> list[str]:
    """The commands Redis received from clients (not those run inside a script) that touch
    a key under `prefix` while `during` ran: read off Redis's own MONITOR, which is on once
    its OK came back and keeps what it reports until it is read."""
    import redis

    shared = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    end = f"{prefix}-end"
    seen: list[str] = []
    with shared.monitor() as monitor:
        during()
        shared.get(end)
        for command in monitor.listen():
            if end in command["command"]:
                return seen
            if prefix in command["command"] and command["client_type"] != "lua":
                seen.append(command["command"].split()[0].upper())
    return seen


def test_an_answer_given_again_meets_both_limits_in_one_round_trip_to_redis(
    client, raw, redis_cache
):
    etag = client.get(URL, **bearer(raw))["ETag"]
    statuses = []

    def again() -> None:
        statuses.append(client.get(URL, **bearer(raw)).status_code)
        statuses.append(client.get(URL, HTTP_IF_NONE_MATCH=etag, **bearer(raw)).status_code)

    assert redis_commands(redis_cache, again) == ["EVALSHA", "EVALSHA"]
    assert statuses == [200, 304]


def test_counters_in_redis_expire_with_their_window(client, raw, redis_cache):
    import redis

    assert client.get(URL, **bearer("oev_AAAAAAAAAAAA." + "x" * 43)).status_code == 401
    assert client.get(URL, **bearer(raw)).status_code == 200
    shared = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = sorted(key.decode() for key in shared.scan_iter(match=f"{redis_cache}:*"))
    assert [key.split(":")[2].rsplit("_", 1)[0] for key in keys] == [
        "throttle_auth_failure",
        "throttle_token",
    ]
    for key in keys:
        assert int(shared.get(key)) == 1
        assert 0 < shared.ttl(key) <= 61  # a minute's window, and a second to spare
