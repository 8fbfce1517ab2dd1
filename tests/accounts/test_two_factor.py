"""Two-factor sign-in (TOTP with backup codes): enrol, sign in with a code, the organization
setting that requires it of admins, and the second factor a reveal needs."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from orgenv.accounts.freshness import SECOND_FACTOR_AT
from orgenv.models import AuditEvent
from tests.conftest import make_group


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The device's code now (or a step later: a code is accepted once per step)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(username: str, password: str) -> tuple[Client, object]:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client, response


def enrol(client: Client, user) -> tuple[TOTPDevice, list[str]]:
    page = client.get("/accounts/two-factor/")
    assert page.status_code == 200
    secret = page.context["secret"].replace(" ", "")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    from base64 import b32encode

    assert secret == b32encode(device.bin_key).decode()
    qr = client.get("/accounts/two-factor/qr.svg")
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    done = client.post("/accounts/two-factor/", {"action": "enable", "code": code(device)})
    assert done.status_code == 200, done.content.decode()
    device.refresh_from_db()
    assert device.confirmed
    return device, done.context["backup_codes"]


def test_a_user_enrols_and_then_signs_in_with_password_and_code(world):
    client, _ = sign_in("bob", "bob-password")
    device, backup = enrol(client, world.bob)
    assert len(backup) == 10
    event = AuditEvent.objects.get(kind="two_factor_enabled")
    assert (event.actor, event.organization) == ("bob", world.acme)

    other, response = sign_in("bob", "bob-password")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/code/")
    assert other.get("/").status_code == 302  # not signed in yet: the code is missing
    wrong = other.post("/accounts/login/code/", {"code": "000000"})
    assert wrong.status_code == 200 and b"wrong or expired" in wrong.content
    assert AuditEvent.objects.filter(kind="login_failed", actor="bob").exists()
    # django-otp throttles a device after a failure (1 s, doubling): even the right code waits.
    throttled = other.post("/accounts/login/code/", {"code": code(device, steps_ahead=1)})
    assert throttled.status_code == 200
    time.sleep(1.1)
    right = other.post("/accounts/login/code/", {"code": code(device, steps_ahead=1)})
    assert right.status_code == 302 and right["Location"] == "/"
    assert other.get("/").status_code == 200


def test_a_backup_code_signs_in_once(world):
    client, _ = sign_in("bob", "bob-password")
    _, backup = enrol(client, world.bob)
    first, _ = sign_in("bob", "bob-password")
    assert first.post("/accounts/login/code/", {"code": backup[0]}).status_code == 302
    second, _ = sign_in("bob", "bob-password")
    assert second.post("/accounts/login/code/", {"code": backup[0]}).status_code == 200


def test_the_code_page_without_a_password_first_sends_to_sign_in(world):
    response = Client().get("/accounts/login/code/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_turning_it_off_needs_a_code_and_is_refused_while_an_organization_requires_it(world):
    client, _ = sign_in("alice", "alice-password")
    device, _ = enrol(client, world.alice)
    world.acme.require_admin_two_factor = True
    world.acme.save()
    refused = client.post(
        "/accounts/two-factor/", {"action": "disable", "code": code(device, steps_ahead=1)}
    )
    assert refused.status_code == 400 and b"requires two-factor sign-in" in refused.content
    world.acme.require_admin_two_factor = False
    world.acme.save()
    off = client.post("/accounts/two-factor/", {"action": "disable", "backup": "", "code": "x"})
    assert off.status_code == 400
    assert TOTPDevice.objects.filter(user=world.alice, confirmed=True).exists()


def test_an_organization_requiring_it_sends_its_admins_to_enrol_before_the_admin(world):
    world.acme.require_admin_two_factor = True
    world.acme.save()
    client, _ = sign_in("alice", "alice-password")
    response = client.get("/admin/orgenv/variablegroup/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/?next=")
    # Member pages stay open; another organization's admin is not concerned.
    assert client.get("/").status_code == 200
    charlie, _ = sign_in("charlie", "charlie-password")
    assert charlie.get("/admin/orgenv/variablegroup/").status_code == 200

    enrol(client, world.alice)
    assert client.get("/admin/orgenv/variablegroup/").status_code == 200


def test_the_setting_is_an_organization_field_in_the_admin(world):
    client, _ = sign_in("alice", "alice-password")
    page = client.get(f"/admin/orgenv/organization/{world.acme.pk}/change/")
    assert "require_admin_two_factor" in page.content.decode()


def test_a_reveal_needs_a_recent_code_when_the_user_has_a_device(world):
    make_group(world.acme, "vault", access="all", secrets={"TOKEN": "s3cr3t-value"})
    client, _ = sign_in("alice", "alice-password")
    device, _ = enrol(client, world.alice)
    url = "/api/v1/projects/acme/web/secrets/TOKEN/reveal"
    body = json.dumps({"reason": "incident 42"})

    def reveal():
        return client.post(url, body, content_type="application/json")

    assert reveal().status_code == 200  # enrolling just passed a code
    session = client.session
    session[SECOND_FACTOR_AT] = time.time() - 3600
    session.save()
    stale = reveal()
    assert stale.status_code == 403 and stale.json()["reauth_url"] == "/accounts/reauth/"
    page = client.get("/accounts/reauth/")
    assert b"Authentication code" in page.content
    no_code = client.post("/accounts/reauth/", {"password": "alice-password"})
    assert no_code.status_code == 200
    assert reveal().status_code == 403
    client.post(
        "/accounts/reauth/",
        {"password": "alice-password", "code": code(device, steps_ahead=1)},
    )
    assert reveal().json()["value"] == "s3cr3t-value"


def test_password_reset_pages_do_not_exist_without_email_url(client, db):
    assert client.get("/accounts/password_reset/").status_code == 404
    assert client.get("/accounts/reset/done/").status_code == 404


@pytest.fixture
def with_email(settings):
    """EMAIL_URL set: the reset URLs are routed (the URLconf is re-read, then restored)."""
    import importlib

    from django.urls import clear_url_caches

    import config.urls
    import orgenv.accounts.urls

    def reload() -> None:
        importlib.reload(orgenv.accounts.urls)
        importlib.reload(config.urls)
        clear_url_caches()

    settings.EMAIL_URL = "smtp://mail.example.com:25"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reload()
    yield
    settings.EMAIL_URL = ""
    reload()


def test_password_reset_with_email_url_sends_mail_and_is_rate_limited(world, with_email, settings):
    from django.core import mail

    world.bob.email = "bob@example.com"
    world.bob.save()
    client = Client()
    assert client.get("/accounts/password_reset/").status_code == 200
    answers = [
        client.post("/accounts/password_reset/", {"email": "bob@example.com"}).status_code
        for _ in range(settings.PASSWORD_RESET_RATE + 1)
    ]
    assert answers == [302] * settings.PASSWORD_RESET_RATE + [429]
    assert len(mail.outbox) == settings.PASSWORD_RESET_RATE
