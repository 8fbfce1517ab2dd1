"""Change requests in a real browser, at 1280 and 360 px: an admin saves a protected group and
gets a request instead; a second admin reads its diff and impact and approves it, or rejects
it with a comment; the author cannot approve; the tab counts the open ones."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from orgenv.models import ChangeRequest, Membership, Organization, Variable, VariableGroup
from tests.browser.conftest import SCREENSHOTS, new_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROTATED = "rotated-through-review-3c7"


@pytest.fixture
def demo(live_server) -> str:
    """The demo, its `production` group protected, and dora, a second admin of acme."""
    call_command("demo", verbosity=0)
    VariableGroup.objects.filter(name="production").update(protected=True)
    dora = User.objects.create_user("dora", password="dora-password-1", is_staff=True)
    Membership.objects.create(
        user=dora, organization=Organization.objects.get(slug="acme"), role="admin"
    )
    return live_server.url


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/**")


def fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


def propose_rotation(page, url: str, width: int) -> ChangeRequest:
    """admin rotates PRODUCTION_SECRET on the protected group's page: a request opens."""
    group = VariableGroup.objects.get(name="production")
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, url, "admin", "admin")
    page.goto(f"{url}/admin/orgenv/variablegroup/{group.pk}/change/")
    assert "saving opens a change request" in page.locator("#protected-note").inner_text()
    fits(page, width)
    row = page.locator(
        "#variables-group tr.has_original", has=page.locator("input[value=PRODUCTION_SECRET]")
    )
    row.locator("textarea").fill(ROTATED)
    page.get_by_label("Why (for the reviewers)").fill("quarterly rotation")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/admin/orgs/acme/requests/*/")
    request = ChangeRequest.objects.get()
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "hidden"  # not yet
    diff = page.get_by_role("table", name="The change, by name; values are never shown")
    assert "PRODUCTION_SECRET" in diff.inner_text() and "value changed" in diff.inner_text()
    assert "This change affects 1 project." in page.content()
    assert "quarterly rotation" in page.content()
    assert ROTATED not in page.content()
    # The author has no Approve button; the tab counts the request.
    assert page.get_by_role("button", name="Approve").count() == 0
    tabs = page.get_by_role("navigation", name="Workspace of acme")
    assert "Change requests 1" in tabs.get_by_role("link", name="Change requests").inner_text()
    fits(page, width)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"change-request-{width}.png"), full_page=True)
    return request


@pytest.mark.parametrize("width", [1280, 360])
def test_a_second_admin_approves_and_it_is_applied(page, browser, demo: str, width: int) -> None:
    request = propose_rotation(page, demo, width)
    context = new_context(browser, viewport={"width": width, "height": 900})
    other = context.new_page()
    sign_in(other, demo, "dora", "dora-password-1")
    other.goto(f"{demo}/admin/orgs/acme/requests/")
    other.get_by_role("link", name=f"#{request.pk} change").click()
    fits(other, width)
    other.get_by_role("button", name="Approve").click()
    other.get_by_text("Approved and applied to production.").wait_for()
    assert other.locator("#request-status").inner_text() == "applied"
    assert ROTATED not in other.content()
    fits(other, width)
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == ROTATED
    history = Variable.history.filter(name="PRODUCTION_SECRET").latest("history_id")
    assert history.history_user.username == "admin"
    assert f"change request #{request.pk}: approved by dora" == history.history_change_reason
    context.close()


@pytest.mark.parametrize("width", [1280, 360])
def test_a_second_admin_rejects_with_a_comment(page, browser, demo: str, width: int) -> None:
    request = propose_rotation(page, demo, width)
    context = new_context(browser, viewport={"width": width, "height": 900})
    other = context.new_page()
    sign_in(other, demo, "dora", "dora-password-1")
    other.goto(f"{demo}/admin/orgs/acme/requests/{request.pk}/")
    other.get_by_label("Comment (why it is rejected)").fill("not during the freeze")
    other.get_by_role("button", name="Reject").click()
    other.get_by_text("Rejected: the author is told").wait_for()
    assert other.locator("#request-status").inner_text() == "rejected"
    assert "not during the freeze" in other.locator("#closing").inner_text()
    fits(other, width)
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "hidden"
    context.close()
    # The author sees it closed, and the tab lists it among the closed ones.
    page.goto(f"{demo}/admin/orgs/acme/requests/")
    assert "rejected" in page.locator(f"#request-{request.pk}").inner_text()
    fits(page, width)


@pytest.mark.parametrize("width", [1280, 360])
def test_a_stale_request_is_refused_updated_then_withdrawn(
    page, browser, demo: str, width: int
) -> None:
    request = propose_rotation(page, demo, width)
    group = VariableGroup.objects.get(name="production")
    Variable.objects.create(group=group, name="ADDED_MEANWHILE", value="x")  # by a command
    context = new_context(browser, viewport={"width": width, "height": 900})
    other = context.new_page()
    sign_in(other, demo, "dora", "dora-password-1")
    other.goto(f"{demo}/admin/orgs/acme/requests/{request.pk}/")
    assert "changed after this request was made" in other.locator("#stale").inner_text()
    assert other.get_by_role("button", name="Approve").count() == 0
    fits(other, width)
    context.close()
    # The author brings it up to date, then withdraws it: nothing was ever applied.
    page.goto(f"{demo}/admin/orgs/acme/requests/{request.pk}/")
    page.get_by_role("button", name="Update to the group as it is now").click()
    page.get_by_text("Updated to the group as it is now").wait_for()
    assert page.locator("#stale").count() == 0
    page.get_by_role("button", name="Withdraw").click()
    page.get_by_text("Withdrawn: nothing was changed.").wait_for()
    assert page.locator("#request-status").inner_text() == "withdrawn"
    fits(page, width)
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "hidden"
