"""The organization workspace in a real browser, on the demo data, at 1280 and 360 px.

Each test runs at both widths. With ORGENV_DOCS_SCREENSHOTS=1 the tour's screenshots are
written to docs/screenshots/ as well (`make screenshots`); otherwise only to artifacts/.
"""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from orgenv.models import Project, VariableGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 360}


@pytest.fixture(params=list(WIDTHS))
def width(request, page) -> int:
    size = WIDTHS[request.param]
    page.set_viewport_size({"width": size, "height": 900 if size > 400 else 780})
    return size


@pytest.fixture
def demo(live_server) -> str:
    call_command("demo", stdout=StringIO())
    return live_server.url


def sign_in(page, url: str, username: str = "admin", password: str = "admin") -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def no_horizontal_scroll(page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def shoot(page, name: str, width: int) -> None:
    """A screenshot for the README's tour, when asked for."""
    if os.environ.get("ORGENV_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}-{width}.png"), full_page=True)


def test_manage_acme_opens_the_workspace_and_every_tab_fits(page, demo, width) -> None:
    sign_in(page, demo)
    page.get_by_text("Hi, admin").click()
    page.locator(".user-menu").get_by_role("link", name="Manage acme").click()
    page.wait_for_url("**/admin/orgs/acme/")
    tabs = page.get_by_role("navigation", name="Workspace of acme")
    assert tabs.get_by_role("link").all_inner_texts() == [
        "Environment Variables",
        "Projects",
        "People",
        "Tokens",
        "Audit",
    ]
    row = page.locator("#group-production-db")
    assert "production" in row.inner_text() and "3 projects" in row.inner_text()
    assert "all projects" in page.locator("#group-shared-infrastructure").inner_text()
    assert "team ml" in page.locator("#group-ml-training-secrets").inner_text()
    no_horizontal_scroll(page)
    shoot(page, "environment-variables", width)

    for tab, name in (("Projects", "projects"), ("Tokens", "tokens"), ("Audit", "audit")):
        page.get_by_role("navigation", name="Workspace of acme").get_by_role(
            "link", name=tab
        ).click()
        page.wait_for_load_state()
        current = page.get_by_role("navigation", name="Workspace of acme").locator(
            "[aria-current=page]"
        )
        assert current.inner_text() == tab
        no_horizontal_scroll(page)
        shoot(page, name, width)


def test_compare_shows_what_one_production_project_lacks(page, demo, width) -> None:
    sign_in(page, demo)
    page.goto(f"{demo}/admin/orgs/acme/projects/")
    page.get_by_role("link", name="Compare projects").click()
    page.get_by_role("navigation", name="Environments").get_by_role(
        "link", name="production"
    ).click()
    page.wait_for_url("**/compare/?environment=production")
    headers = page.locator("#compare thead th a").all_inner_texts()
    assert headers == ["production-api", "production-ml", "production_db"]
    gaps = page.locator(".workspace-gaps")
    gaps.locator("summary").click()  # nine gaps: the list starts folded
    assert (
        "PRODUCTION_SECRET is set for production_db but not production-api, production-ml "
        "(production)." in gaps.inner_text()
    )
    secret_row = page.locator("#compare-DATABASE_URL").inner_text()
    assert "group:production-db" in secret_row and "••••••" in secret_row
    assert "postgresql://user:pass" not in page.content()
    no_horizontal_scroll(page)
    shoot(page, "compare", width)


def test_the_demo_is_untouched_by_a_second_load(demo) -> None:
    """`make run` runs the demo at every start: the second run must change nothing."""
    group = VariableGroup.objects.get(name="external-apis")
    group.projects.remove(Project.objects.get(slug="production-api"))
    output = StringIO()
    call_command("demo", stdout=output)
    assert "nothing was changed" in output.getvalue()
    assert list(group.projects.values_list("slug", flat=True)) == ["production-ml"]
