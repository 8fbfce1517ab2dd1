"""The hygiene page and "who received this" in a real browser, at 1280 and 360 pixels."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from orgenv.models import Membership, Organization, Project, ProjectToken, Variable
from orgenv.tokens import token_issue
from tests.conftest import make_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def site(live_server):
    acme = Organization.objects.create(slug="acme", name="Acme ML")
    admin = User.objects.create_user("admin", password="admin", is_staff=True)
    Membership.objects.create(user=admin, organization=acme, role="admin")
    db = Project.objects.create(
        organization=acme, slug="production_db", name="DB", environment="production"
    )
    make_group(
        acme,
        "production-db",
        environment="production",
        projects=[db],
        secrets={"DATABASE_PASSWORD": "s3cret-value-9f2", "OLD_API_KEY": "k"},
        max_age_days=90,
    )
    make_group(acme, "unused-group", variables={"DATASETS_URL": "https://u:p4ss@d.example.com"})
    Variable.objects.filter(name="OLD_API_KEY").update(
        updated_at=timezone.now() - timedelta(days=120)
    )
    token, raw = token_issue(project=db, name="nightly-backup")
    ProjectToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() + timedelta(days=3))
    return live_server.url, raw


def sign_in(page, url: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


@pytest.mark.parametrize("width", [1280, 360])
def test_hygiene_and_who_received_this(page, site, width):
    url, raw = site
    page.set_viewport_size({"width": width, "height": 900})
    page.request.get(f"{url}/api/v1/environment", headers={"Authorization": f"Bearer {raw}"})
    sign_in(page, url)

    page.goto(f"{url}/orgs/acme/audit/")
    page.get_by_role("link", name="Hygiene: old, unused and exposed secrets").click()
    assert page.get_by_role("alert").inner_text().startswith("1 secret past its group")
    overdue = page.locator("tr.overdue")
    assert overdue.count() == 1 and "OLD_API_KEY" in overdue.inner_text()
    assert (
        "unused-group"
        in page.get_by_role("region", name="Groups that reach no project").inner_text()
    )
    assert "expires in" in page.get_by_role("region", name="Tokens").inner_text()
    assert "Basic Auth Credentials" in page.locator("#public-title + ul").inner_text()
    assert "s3cret-value" not in page.content() and "p4ss" not in page.content()
    _fits(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"hygiene-{width}.png"), full_page=True)

    page.goto(f"{url}/orgs/acme/audit/")
    page.get_by_role("link", name="Who received a variable?").click()
    page.get_by_label("Project or group").select_option("group:production-db")
    page.get_by_label("Variable", exact=True).fill("DATABASE_PASSWORD")
    page.get_by_role("button", name="Show").click()
    summary = page.locator(".audit-summary").inner_text()
    assert summary == "1 resolution, 1 token, 1 project, 1 address."
    row = page.locator("table.audit-log tbody tr").inner_text()
    assert "token nightly-backup (oev_" in row and "127.0.0.1" in row
    assert "s3cret-value" not in page.content()
    _fits(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"exposure-{width}.png"), full_page=True)


def _fits(page, width: int) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} overflows by {overflow}px at {width}px"
