"""Deployment settings (SPEC "Deployment settings"): HTTPS, SESSION_COOKIE_AGE and a clean
`check --deploy`, read from the environment by config.settings in a fresh process."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    """manage.py with config.settings (not the tests' settings) and only the given settings:
    nothing of the test process's environment (DJANGO_ALLOW_ASYNC_UNSAFE, set for the browser
    tests, is itself a deployment error) but what finding programs needs."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL="sqlite:///:memory:",
        **environment,
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_of(**environment: str) -> dict:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_AGE",
    ]
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = run_manage("shell", "--verbosity", "0", "-c", code, **environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_reports_no_issues_with_https_and_debug_off() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", HTTPS="true", DEBUG="false")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("System check identified no issues (0 silenced).")


def test_check_deploy_without_https_names_what_https_would_fix() -> None:
    result = run_manage("check", "--deploy", DEBUG="false")
    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" in result.stderr + result.stdout


def test_https_turns_on_secure_cookies_hsts_and_the_redirect() -> None:
    assert settings_of(HTTPS="true") == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        # Without a trusted proxy, X-Forwarded-Proto is anyone's to write: ignored.
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_AGE": 28_800,
    }
    behind_proxy = settings_of(HTTPS="true", TRUSTED_PROXIES="1")
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    plain = settings_of(SESSION_COOKIE_AGE="3600")
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_SSL_REDIRECT"] is False
    assert plain["SECURE_HSTS_SECONDS"] == 0 and plain["SESSION_COOKIE_AGE"] == 3600


def test_a_sign_in_lasts_eight_hours(client, world) -> None:
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": "bob-password"}, follow=False
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["max-age"] == 8 * 60 * 60
