"""People and two-factor sign-in in a real browser: an admin invites, the user accepts on
`/`; an admin enrols TOTP and signs in with a code."""

from __future__ import annotations

import re
import time
from base64 import b32decode

import pytest
from django.contrib.auth.models import User
from django_otp.oath import TOTP

from orgenv.models import AuditEvent, Membership, Organization, Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def url(live_server) -> str:
    acme = Organization.objects.create(slug="acme", name="Acme ML")
    admin = User.objects.create_user("admin", password="admin", is_staff=True)
    User.objects.create_user("dora", password="dora-password")
    Membership.objects.create(user=admin, organization=acme, role="admin")
    Project.objects.create(organization=acme, slug="web", name="Web")
    return live_server.url


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page) -> None:
    page.get_by_text(re.compile(r"^Hi, ")).click()
    page.get_by_role("button", name="Sign out").click()


@pytest.mark.parametrize("width", [1280, 360])
def test_an_admin_invites_and_the_user_accepts(page, url, width) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, url, "admin", "admin")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/admin/orgs/acme/people/")
    page.get_by_label("Username").first.fill("dora")
    page.get_by_role("button", name="Invite").click()
    assert "If an account with that username exists" in page.content()
    assert "dora" in page.locator("#invitations").inner_text()
    page.screenshot(path=f"artifacts/screenshots/people-{width}.png", full_page=True)
    page.goto(f"{url}/accounts/logout/")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, url, "dora", "dora-password")
    page.wait_for_url(f"{url}/")
    invitation = page.locator(".invitation")
    assert "Acme ML" in invitation.inner_text() and "member" in invitation.inner_text()
    page.screenshot(path=f"artifacts/screenshots/invitation-{width}.png", full_page=True)
    invitation.get_by_role("button", name="Accept").click()
    page.wait_for_url(f"{url}/")
    assert "You joined Acme ML as member." in page.content()
    assert Membership.objects.get(user__username="dora").role == "member"
    assert AuditEvent.objects.filter(kind="invitation_accepted", actor="dora").exists()


def test_an_admin_enrols_totp_and_signs_in_with_a_code(page, url) -> None:
    sign_in(page, url, "admin", "admin")
    page.wait_for_url(f"{url}/")
    page.get_by_text("Hi, admin").click()
    page.get_by_role("link", name="Two-factor sign-in").click()
    page.wait_for_url("**/accounts/two-factor/")
    assert page.locator("img.qr").evaluate("img => img.naturalWidth") > 0  # the QR code loads
    secret = b32decode(page.locator("#totp-secret").inner_text().replace(" ", ""))
    totp = TOTP(secret)
    page.get_by_label("Code shown by the app").fill(f"{totp.token():06d}")
    page.get_by_role("button", name="Turn on").click()
    assert page.locator("#backup-codes li").count() == 10
    page.screenshot(path="artifacts/screenshots/two-factor-enrolled.png", full_page=True)
    sign_out(page)

    sign_in(page, url, "admin", "admin")
    page.wait_for_url("**/accounts/login/code/**")
    totp.time = time.time() + 30  # the next step: a code is accepted once per step
    page.get_by_label("Authentication code").fill(f"{totp.token():06d}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")
    assert page.get_by_text("Hi, admin").is_visible()
    response = page.goto(f"{url}/admin/")
    assert response.status == 200 and "/admin/" in page.url
