"""Change safety in a real browser, at 1280 and 360 px: the member's "Why isn't NAME here?"
box, an admin restoring a group from its history page after a preview, and saving a group's
or a project's page through its impact preview."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from orgenv.models import Project, ProjectVariable, Variable, VariableGroup
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


def no_horizontal_scroll(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


@pytest.mark.parametrize("width", [1280, 360])
def test_an_admin_saves_a_group_through_its_impact_preview(page, demo: str, width: int) -> None:
    group = VariableGroup.objects.get(name="production")
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, demo, "admin", "admin")
    page.goto(f"{demo}/admin/orgenv/variablegroup/{group.pk}/change/")

    def row(name: str):
        return page.locator(
            "#variables-group tr.has_original", has=page.locator(f"input[value={name}]")
        )

    row("PRODUCTION_ENVVAR").locator("textarea").fill("production-2")
    row("PRODUCTION_SECRET").locator("textarea").fill("rotated-in-preview-5e1")
    page.get_by_role("button", name="Save", exact=True).click()

    page.get_by_role("heading", name="This change affects 1 project.").wait_for()
    table = page.get_by_role("table", name="What each project receives after the change")
    text = table.inner_text()
    assert "Project production_db" in text
    assert "'production' → 'production-2'" in text and "value changed" in text
    assert "rotated-in-preview-5e1" not in page.content()
    assert Variable.objects.get(name="PRODUCTION_ENVVAR").value == "production"
    no_horizontal_scroll(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"impact-preview-group-{width}.png"), full_page=True)

    # Back: the form again with the public value as typed; the secret is typed again.
    page.get_by_role("button", name="Back to the form").click()
    page.get_by_text("type them again").wait_for()
    assert row("PRODUCTION_ENVVAR").locator("textarea").input_value() == "production-2"
    assert row("PRODUCTION_SECRET").locator("textarea").input_value() == ""
    row("PRODUCTION_SECRET").locator("textarea").fill("rotated-in-preview-5e1")
    page.get_by_role("button", name="Save", exact=True).click()

    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url("**/admin/orgs/acme/")
    assert "It changed the environment of 1 project, as previewed." in (
        page.locator(".messagelist").inner_text()
    )
    stored = {v.name: v.value for v in group.variables.all()}
    assert stored == {
        "PRODUCTION_ENVVAR": "production-2",
        "PRODUCTION_SECRET": "rotated-in-preview-5e1",
    }
    assert "rotated-in-preview-5e1" not in page.content()


@pytest.mark.parametrize("width", [1280, 360])
def test_an_admin_overrides_a_variable_on_a_project_page_through_the_preview(
    page, demo: str, width: int
) -> None:
    project = Project.objects.get(slug="production-api")
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, demo, "admin", "admin")
    page.goto(f"{demo}/admin/orgenv/project/{project.pk}/change/")
    page.wait_for_load_state("load")  # the inline's "Add another" comes from its script
    page.get_by_role("button", name="Add another Project variable").click()
    new = page.locator("#variables-group tr.form-row.dynamic-variables").last
    new.locator("input[name$=name]").fill("API_ENDPOINT")
    new.locator("textarea").fill("https://api.internal.example.com")
    page.get_by_role("button", name="Save and continue editing").click()

    page.get_by_role("heading", name="This change affects 1 project.").wait_for()
    text = page.locator("#impact-production-api").inner_text()
    assert "API_ENDPOINT" in text and "changed" in text
    assert "source group:shared-infrastructure → project" in text
    assert not ProjectVariable.objects.filter(project=project, name="API_ENDPOINT").exists()
    no_horizontal_scroll(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"impact-preview-project-{width}.png"), full_page=True)

    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url(f"**/admin/orgenv/project/{project.pk}/change/")
    effective = page.locator("#effective-API_ENDPOINT").inner_text()
    assert "https://api.internal.example.com" in effective and "project" in effective
    assert ProjectVariable.objects.get(project=project, name="API_ENDPOINT").value == (
        "https://api.internal.example.com"
    )
    no_horizontal_scroll(page, width)


@pytest.mark.parametrize("width", [1280, 360])
def test_an_admin_deletes_a_group_after_seeing_what_each_project_loses(
    page, demo: str, width: int
) -> None:
    group = VariableGroup.objects.get(name="production")
    secret = group.variables.get(name="PRODUCTION_SECRET")
    secret.value = "deleted-with-its-group-3f9a"
    secret.save()
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, demo, "admin", "admin")
    page.goto(f"{demo}/admin/orgenv/variablegroup/{group.pk}/change/")
    page.get_by_role("link", name="Delete", exact=True).click()

    page.get_by_role("heading", name="Deleting this affects 1 project.").wait_for()
    table = page.get_by_role("table", name="What each project receives after the deletion")
    text = table.inner_text()
    assert "Project production_db" in text
    assert "PRODUCTION_SECRET" in text and "removed" in text and "was from group:production" in text
    assert "deleted-with-its-group-3f9a" not in page.content()
    assert VariableGroup.objects.filter(pk=group.pk).exists()
    no_horizontal_scroll(page, width)
    page.screenshot(path=str(SCREENSHOTS / f"deletion-preview-{width}.png"), full_page=True)

    page.get_by_role("button", name="Yes, I’m sure").click()
    page.locator(".messagelist").wait_for()
    assert "was deleted successfully" in page.locator(".messagelist").inner_text()
    assert not VariableGroup.objects.filter(pk=group.pk).exists()
