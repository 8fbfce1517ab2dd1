"""Reveal in a real browser: the re-authentication prompt, the reason, the value in place,
gone on reload, and the audit entry that says who looked and why."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore

from orgenv.accounts.freshness import PASSWORD_AT
from orgenv.models import Membership, Organization, Project
from tests.conftest import make_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "prd-Reveal-distinctive-secret-77c1"


@pytest.fixture
def url(live_server) -> str:
    acme = Organization.objects.create(slug="acme", name="Acme ML")
    admin = User.objects.create_user("admin", password="admin", is_staff=True)
    Membership.objects.create(user=admin, organization=acme, role="admin")
    project = Project.objects.create(
        organization=acme, slug="production_db", name="production db", environment="production"
    )
    make_group(
        acme,
        "production",
        environment="production",
        variables={"PRODUCTION_ENVVAR": "production"},
        secrets={"PRODUCTION_SECRET": SECRET},
        projects=[project],
    )
    return live_server.url


def sign_in(page, url: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def age_password_entry(page) -> None:
    """As if the admin had signed in an hour ago."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[PASSWORD_AT] = time.time() - 3600
    session.save()


def reveal(page, reason: str) -> None:
    row = page.locator("#var-PRODUCTION_SECRET")
    row.get_by_role("button", name="Reveal PRODUCTION_SECRET").click()
    row.get_by_label("Why do you need to see PRODUCTION_SECRET?").fill(reason)
    row.get_by_role("button", name="Show value").click()


@pytest.mark.parametrize("width", [1280, 360])
def test_an_admin_reveals_a_secret_after_confirming_the_password(page, url, width) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, url)
    age_password_entry(page)
    environment = f"{url}/orgs/acme/projects/production_db/environment/"
    page.goto(environment)
    cell = page.locator("#var-PRODUCTION_SECRET td[data-label=Value]")
    assert SECRET not in page.content()

    reveal(page, "checking the rotated password")
    prompt = cell.get_by_role("link", name="Confirm your password")
    prompt.click()
    page.wait_for_url("**/accounts/reauth/**")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(environment)

    reveal(page, "checking the rotated password")
    assert cell.locator("pre.revealed").inner_text() == SECRET
    assert "recorded in the audit log" in cell.inner_text()
    page.screenshot(path=f"artifacts/screenshots/reveal-{width}.png", full_page=True)

    page.reload()
    assert SECRET not in page.content()
    assert cell.inner_text().startswith("••••••")

    page.goto(f"{url}/orgs/acme/audit/")
    entry = page.locator("tr", has_text="secret revealed").first
    text = entry.inner_text()
    assert "admin" in text and "checking the rotated password" in text
    assert "PRODUCTION_SECRET" in text
    assert SECRET not in page.content()


def test_the_admin_project_page_reveals_in_place_too(page, url) -> None:
    sign_in(page, url)
    project = Project.objects.get(slug="production_db")
    page.goto(f"{url}/admin/orgenv/project/{project.pk}/change/")
    assert SECRET not in page.content()
    row = page.locator("#effective-environment tr", has_text="PRODUCTION_SECRET")
    row.get_by_role("button", name="Reveal PRODUCTION_SECRET").click()
    reason = row.get_by_label("Why do you need to see PRODUCTION_SECRET?")
    reason.fill("comparing with the vault")
    reason.press("Enter")  # must reveal, not submit the change form
    assert row.locator("pre.revealed").inner_text() == SECRET
    assert "/change/" in page.url
