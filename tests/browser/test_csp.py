"""Every kind of page under the Content-Security-Policy, in Chromium.

conftest.py fails any browser test whose pages cause a CSP violation; this module visits every
page kind (member pages, audit pages, every admin changelist, add, change and history page,
the API docs, the error pages) so that a page nobody else drives is checked too.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from orgenv.models import AuditEvent
from tests.browser.conftest import _csp_watches, new_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(live_server) -> str:
    call_command("demo", verbosity=0)
    User.objects.create_superuser("root", password="root-password")
    return live_server.url


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def admin_pages() -> list[str]:
    """Changelist, add, change and history pages of every registered model with a row."""
    paths = [reverse("admin:index"), reverse("admin:index") + "?organization=acme"]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        paths.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(_RequestAsRoot()):
            paths.append(reverse("admin:{}_{}_add".format(*info)))
        first = model.objects.order_by("pk").first()
        if first is not None:
            paths.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
            paths.append(reverse("admin:{}_{}_history".format(*info), args=[first.pk]))
    return paths


class _RequestAsRoot:
    """Just enough of a request for ModelAdmin.has_add_permission(): a superuser."""

    user = User(is_superuser=True, is_active=True, is_staff=True)


def test_every_page_kind_loads_without_a_csp_violation(page, demo: str) -> None:
    responses = []
    page.on("response", lambda r: responses.append(r) if r.request.is_navigation_request() else 0)
    page.goto(f"{demo}/accounts/login/")
    sign_in(page, demo, "root", "root-password")
    paths = [
        "/",
        "/orgs/acme/projects/production_db/environment/",
        "/orgs/acme/projects/staging-api/environment/",
        "/orgs/acme/audit/",
        "/orgs/acme/grants/",
        "/orgs/acme/projects/no-such-project/environment/",  # the 404 page
        "/api/docs/",
        "/accounts/logout/",  # GET asks before signing out
        "/accounts/password_change/",
        *admin_pages(),
    ]
    assert AuditEvent.objects.exists()  # the audit pages list events, not an empty table
    for path in paths:
        page.goto(f"{demo}{path}")
        page.wait_for_load_state("networkidle")
    # Swagger UI ran (its script is a static file and an init script served separately).
    page.goto(f"{demo}/api/docs/")
    page.get_by_text("/api/v1/environment").first.wait_for()

    documents = [r for r in responses if r.url.startswith(demo)]
    assert len(documents) >= len(paths)
    for response in documents:
        csp = response.header_value("content-security-policy") or ""
        assert "default-src 'self'" in csp, response.url
        assert "frame-ancestors 'none'" in csp, response.url
        assert "unsafe-inline" not in csp, response.url
        assert response.header_value("referrer-policy") == "same-origin"
        assert response.header_value("cross-origin-opener-policy") == "same-origin"


def test_a_member_signs_in_and_out_without_a_csp_violation(page, demo: str) -> None:
    sign_in(page, demo, "alice", "alice")
    page.goto(f"{demo}/orgs/acme/projects/staging_jobs/environment/")
    page.get_by_label("Filter variables").fill("staging")  # filter.js runs
    page.get_by_text("Hi, alice").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def test_an_admin_issues_a_token_without_a_csp_violation(page, demo: str) -> None:
    sign_in(page, demo, "admin", "admin")
    page.goto(f"{demo}/admin/orgenv/projecttoken/add/")
    page.get_by_label("Project").select_option(label="acme/production_db")
    page.get_by_label("Name").fill("ci")
    with page.expect_navigation(wait_until="load"):  # select-on-focus.js (deferred) has run
        page.get_by_role("button", name="Save", exact=True).click()
    token = page.locator("#issued-token")
    # The script is deferred: it runs before DOMContentLoaded, which the click need not await.
    page.wait_for_load_state("domcontentloaded")
    token.focus()  # select-on-focus.js selects all of it, for copying
    selected = page.evaluate(
        "() => { const f = document.activeElement;"
        " return f.value.slice(f.selectionStart, f.selectionEnd); }"
    )
    assert selected == token.input_value()
    assert token.input_value().startswith("oev_")


def test_the_watch_catches_an_inline_script(browser, demo: str) -> None:
    """The check that guards every browser test does fail on a violation."""
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{demo}/accounts/login/")
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.ran = true'; document.body.appendChild(s); }"
        )
        page.wait_for_timeout(200)
        assert page.evaluate("() => window.ran === undefined")
        watch = _csp_watches[-1]
        assert len(watch.violations) == 1
        assert "script-src 'self'" in watch.violations[0]
        with pytest.raises(pytest.fail.Exception, match="Content-Security-Policy violations"):
            watch.check()
        watch.violations.clear()  # seen and asserted: not a failure of this test
    finally:
        context.close()
