"""Change safety in a real browser, at 1280 and 360 px: the member's "Why isn't NAME here?"
box, and an admin restoring a group from its history page after a preview."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from orgenv.models import VariableGroup
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(live_server) -> str:
    call_command("demo", verbosity=0)
    assert User.objects.filter(username="alice").exists()
    return live_server.url


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


@pytest.mark.parametrize("width", [1280, 360])
def test_a_member_asks_why_a_variable_is_not_here(page, demo: str, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, demo, "alice", "alice")
    page.goto(f"{demo}/orgs/acme/projects/staging_jobs/environment/")
    box = page.get_by_role("region", name="Why isn't NAME here?")
    box.get_by_label("Variable name").fill("WANDB_API_KEY")
    box.get_by_role("button", name="Explain").click()
    answer = page.locator("#why-answer")
    answer.wait_for()
    assert "WANDB_API_KEY does not reach staging_jobs." in answer.inner_text()
    assert (
        "Group ml-training-secrets (priority 0) defines WANDB_API_KEY but is not granted to "
        "staging_jobs." in answer.inner_text()
    )
    assert "Ask an admin of acme to grant group ml-training-secrets to project staging_jobs." in (
        answer.inner_text()
    )
    assert "wandb-demo-key" not in page.content()
    # The answer fits the screen: nothing wider than the viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"why-box-{width}.png"), full_page=True)

    box.get_by_label("Variable name").fill("DATABSE_URL")
    box.get_by_role("button", name="Explain").click()
    page.wait_for_url("**why=DATABSE_URL**")
    assert "Similar names: DATABASE_URL (in group production-db)." in (
        page.locator("#why-answer").inner_text()
    )


@pytest.mark.parametrize("width", [1280, 360])
def test_an_admin_restores_a_group_from_its_history_page(page, demo: str, width: int) -> None:
    group = VariableGroup.objects.get(name="production")
    group.description = "before the incident"
    group.save()
    version = group.history.latest()
    time.sleep(0.01)
    secret = group.variables.get(name="PRODUCTION_SECRET")
    secret.value = "leaked-and-replaced"
    secret.save()
    group.variables.get(name="PRODUCTION_ENVVAR").delete()

    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, demo, "admin", "admin")
    page.goto(f"{demo}/admin/orgenv/variablegroup/{group.pk}/history/{version.history_id}/")
    page.get_by_role("button", name="Restore this version").click()
    section = page.get_by_role("region", name="Restore this version")
    section.get_by_text("This change affects 1 project.").wait_for()
    text = section.inner_text()
    assert "variable PRODUCTION_ENVVAR: restored (deleted since)" in text
    assert "variable PRODUCTION_SECRET: value changed" in text
    assert "production_db" in text
    assert "leaked-and-replaced" not in page.content() and "hidden" not in text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"restore-preview-{width}.png"), full_page=True)

    section.get_by_role("button", name="Confirm restore").click()
    page.get_by_text("acme/production restored to").wait_for()
    assert group.variables.get(name="PRODUCTION_SECRET").value == "hidden"
    assert group.variables.filter(name="PRODUCTION_ENVVAR").exists()
