"""Real `python manage.py db_worker` processes on the test database (production settings)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker(name: str, log: Path, **env: str) -> subprocess.Popen:
    """A db_worker polling every 0.1 s, its output (mails included, EMAIL_URL=consolemail)
    in `log`."""
    environment = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "test-only-" + "x" * 50,
        "DEBUG": "false",
        "EMAIL_URL": "consolemail://",
        "PERIODIC_TICK_SECONDS": "0.2",
        "CONN_MAX_AGE": "0",
        **env,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-reload",
            "--interval",
            "0.1",
            "--no-startup-delay",
            "--worker-id",
            name,
        ],
        env=environment,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(5)
    return process.returncode


def wait_for(done, *, timeout: float = 30.0, what: str = "the worker") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not get there in {timeout:.0f} s")
        time.sleep(0.1)
