"""Two app servers, one PostgreSQL database, one Redis: a change is visible to the very next
request on either server, whatever either has cached.

Server A is pytest's live_server (this process); server B is gunicorn started here on the
same test database, both with CACHE_URL=redis://127.0.0.1:6379/0 under a key prefix of this
test session only (its keys are deleted at the end; nothing else in Redis is touched).
Requests alternate between the servers around each kind of change.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from orgenv.crypto import stored_token
from orgenv.models import Variable
from orgenv.services import group_set_grants, variable_set
from orgenv.tokens import token_issue, token_revoke
from tests.conftest import make_group

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"
PREFIX = f"orgenv-test-{secrets.token_hex(6)}"
NEW_KEY = Fernet.generate_key().decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(base: str, token: str, etag: str | None = None) -> tuple[int, dict, str]:
    """(status, JSON body or {}, ETag) of GET /api/v1/environment on one server."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if etag:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(f"{base}/api/v1/environment", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers["ETag"]
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else {}, error.headers.get("ETag", "")


@pytest.fixture
def server_env() -> dict[str, str]:
    """What server B's environment adds to the test settings' (a test parametrizes it)."""
    return {}


@pytest.fixture
def servers(live_server, settings, server_env):
    if connection.vendor != "postgresql":
        pytest.skip(
            "two app servers share a PostgreSQL database: run with DATABASE_URL=postgres://…"
        )
    # B decrypts with the key of the data and the one the key change below encrypts with.
    keys = [NEW_KEY, *settings.FERNET_KEYS]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": PREFIX,
        }
    }
    db = connection.settings_dict
    database = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database,
        "CACHE_URL": f"{REDIS}?key_prefix={PREFIX}",
        "FERNET_KEYS": ",".join(keys),
        "ALLOWED_HOSTS": "127.0.0.1",
        **server_env,
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen(
        [gunicorn, "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    other = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                with urllib.request.urlopen(f"{other}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the second server did not start"
                time.sleep(0.2)
        yield live_server.url, other
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(match=f"{PREFIX}:*"):
            client.delete(key)


def next_answers(a: str, b: str, token: str, etag: str | None = None) -> list[dict]:
    """The variables answered by B, then A, then B again, the first two being the first each
    server serves after a change, sent with the ETag from before it: never a 304."""
    answers = []
    for base in (b, a, b):
        status, body, _ = get(base, token, etag)
        assert status == 200, (base, status, body)
        answers.append(body["variables"])
    return answers


def test_every_kind_of_change_is_visible_to_the_next_request_on_either_server(
    servers, world, settings
):
    a, b = servers
    group = make_group(
        world.acme,
        "production",
        environment="production",
        projects=[world.web],
        secrets={"DB_PASSWORD": "first-password"},
        variables={"MODE": "fast"},
    )
    extra = make_group(world.acme, "extra", variables={"EXTRA": "granted later"})
    token, raw = token_issue(project=world.web, name="ci")

    # Both servers have answered (and may have cached) the environment, and revalidate it.
    first = [get(base, raw) for base in (a, b, a, b)]
    assert {status for status, _, _ in first} == {200}
    assert all(
        body["variables"] == {"DB_PASSWORD": "first-password", "MODE": "fast"}
        for _, body, _ in first
    )
    etag = first[0][2]
    assert {answer[2] for answer in first} == {etag}
    assert get(b, raw, etag)[0] == 304 and get(a, raw, etag)[0] == 304

    # A secret rotated.
    variable_set(group=group, name="DB_PASSWORD", value="second-password", is_secret=True)
    for variables in next_answers(a, b, raw, etag):
        assert variables["DB_PASSWORD"] == "second-password"
    etag = get(a, raw)[2]

    # A group granted, then taken away.
    group_set_grants(group=extra, projects=[world.web])
    for variables in next_answers(a, b, raw, etag):
        assert variables["EXTRA"] == "granted later"
    etag = get(b, raw)[2]
    group_set_grants(group=extra, projects=[], prune=True)
    for variables in next_answers(a, b, raw, etag):
        assert "EXTRA" not in variables
    etag = get(a, raw)[2]

    # The key changes: rotate_keys re-encrypts every value with the new first key, and both
    # servers answer the same environment from the re-encrypted rows.
    stored = set(Variable.objects.values_list(stored_token("value"), flat=True))
    settings.FERNET_KEYS = [NEW_KEY, *settings.FERNET_KEYS]  # A as B: the new key first
    call_command("rotate_keys", stdout=io.StringIO())
    assert stored.isdisjoint(Variable.objects.values_list(stored_token("value"), flat=True))
    for variables in next_answers(a, b, raw):
        assert variables == {"DB_PASSWORD": "second-password", "MODE": "fast"}

    # A variable deleted.
    Variable.objects.get(name="MODE").delete()
    for variables in next_answers(a, b, raw, etag):
        assert "MODE" not in variables

    # The token expires, then is extended: each is seen on the next request on both servers.
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save(update_fields=["expires_at"])
    assert get(b, raw)[0] == 401 and get(a, raw)[0] == 401
    token.expires_at = None
    token.save(update_fields=["expires_at"])
    assert get(a, raw)[0] == 200 and get(b, raw)[0] == 200

    # The token revoked: refused on the next request on both servers, with an ETag or not.
    etag = get(b, raw)[2]
    token_revoke(token=token)
    for base in (b, a):
        status, body, _ = get(base, raw, etag)
        assert status == 401, body
        assert "second-password" not in json.dumps(body)


@pytest.mark.parametrize("server_env", [{"THROTTLE_TOKEN_RATE": "4/day"}])
def test_a_tokens_rate_is_counted_once_across_both_servers(servers, world, settings):
    """Both servers count in the one Redis: the first answers (the long way) and the answers
    given again (one script) alike. A day's window, in real time on both servers."""
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "token": "4/day"},
    }
    a, b = servers
    make_group(world.acme, "production", projects=[world.web], variables={"MODE": "fast"})
    _, raw = token_issue(project=world.web, name="ci")
    statuses = [get(base, raw)[0] for base in (a, b, a, b, a, b)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    # Another token of the project has its own count, on either server.
    _, other = token_issue(project=world.web, name="other")
    assert [get(base, other)[0] for base in (b, a)] == [200, 200]
