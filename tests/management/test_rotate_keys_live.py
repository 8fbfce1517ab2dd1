"""rotate_keys against real app servers (gunicorn subprocesses on the test database): it
refuses while a server that answered recently lacks the new key, naming it, and after the
reload it rotates while runners are served without a single failed request."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from orgenv.models import AppServer, Variable
from orgenv.tokens import token_issue
from tests.conftest import make_group

ROOT = Path(__file__).resolve().parents[2]
KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()

pytestmark = pytest.mark.django_db(transaction=True)


# The address each started server listens on, by process id.
SERVER_URLS: dict[int, str] = {}


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(name: str, keys: list[str]) -> Iterator[subprocess.Popen]:
    """gunicorn serving config.settings (production settings) with this key ring."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "FERNET_KEYS": ",".join(keys),
        "SECRET_KEY": "test-only-" + "x" * 50,
        "SERVER_NAME": name,
        "HEARTBEAT_SECONDS": "1",
        "CACHE_URL": "locmemcache://rotation-test",
        # The runner thread below fetches as fast as the server answers, faster than the
        # default 600 a minute: throttling is not what this test is about.
        "THROTTLE_TOKEN_RATE": "100000/min",
        "DEBUG": "false",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    SERVER_URLS[process.pid] = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"{name} did not start")
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # a graceful stop: the server removes its heartbeat row
        process.wait(20)


def fetch(server: subprocess.Popen, token: str) -> int:
    request = urllib.request.Request(
        f"{SERVER_URLS[server.pid]}/api/v1/environment",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_rotation_refuses_while_an_old_server_runs_and_completes_after_the_reload(world, settings):
    settings.FERNET_KEYS = [KEY_A]
    make_group(world.acme, "g", projects=[world.web], secrets={"S": "s3cret"}, variables={"P": "p"})
    raw = token_issue(project=world.web, name="ci")[1]

    with app_server("old-server", [KEY_A]) as old:
        assert fetch(old, raw) == 200  # it answered, so it is on record with its key ring
        settings.FERNET_KEYS = [KEY_B, KEY_A]  # the operator's new key list
        with pytest.raises(CommandError) as caught:
            call_command("rotate_keys")
        message = str(caught.value)
        assert "old-server" in message and "Reload them" in message
        assert "Nothing was changed" in message
        assert fetch(old, raw) == 200  # still answering: nothing was rotated

        with app_server("new-server", [KEY_B, KEY_A]) as new:  # the reload
            assert fetch(new, raw) == 200
            stop(old)
            assert not AppServer.objects.filter(name="old-server").exists()

            statuses: list[int] = []
            done = threading.Event()

            def runner() -> None:
                while not done.is_set():
                    statuses.append(fetch(new, raw))

            thread = threading.Thread(target=runner)
            thread.start()
            try:
                time.sleep(0.5)
                call_command("rotate_keys", "--batch-size", "1", stdout=open(os.devnull, "w"))
                time.sleep(0.5)
            finally:
                done.set()
                thread.join(30)
            assert len(statuses) > 5
            assert set(statuses) == {200}, statuses  # no failed request during rotation

    settings.FERNET_KEYS = [KEY_B]  # the old key can go
    assert {v.name: v.value for v in Variable.objects.all()} == {"S": "s3cret", "P": "p"}
