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

from orgenv.models import Project, ProjectToken, Variable, VariableGroup
from orgenv.selectors.layers import load_layers, plaintext
from orgenv.tokens import token_issue, token_revoke

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
    """A screenshot for the workspace tour (docs/workspace.md), when asked for."""
    if os.environ.get("ORGENV_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        # The whole page, cut at a height a reader of the docs still scrolls through (the
        # audit log's fifty entries at 360 px would be eleven screens).
        height = min(page.evaluate("document.documentElement.scrollHeight"), 2600)
        page.screenshot(
            path=str(DOCS / f"{name}-{width}.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": width, "height": height},
        )


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
        "Change requests",
        "Audit",
        "Webhooks",
    ]
    row = page.locator("#group-production-db")
    assert "production" in row.inner_text() and "3 projects" in row.inner_text()
    assert "all projects" in page.locator("#group-shared-infrastructure").inner_text()
    assert "team ml" in page.locator("#group-ml-training-secrets").inner_text()
    no_horizontal_scroll(page)
    shoot(page, "environment-variables", width)

    for tab, name in (
        ("Projects", "projects"),
        ("People", "people"),
        ("Tokens", "tokens"),
        ("Change requests", "change-requests"),
        ("Audit", "audit"),
        ("Webhooks", "webhooks"),
    ):
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


def test_the_seed_path_creates_a_group_whose_secret_reaches_the_project(page, demo, width) -> None:
    """ "Hi, admin" → "Manage acme" → Environment Variables → Add new environment variable
    group → name → projects → variables → the key icon → Save."""
    sign_in(page, demo)
    page.get_by_text("Hi, admin").click()
    page.locator(".user-menu").get_by_role("link", name="Manage acme").click()
    tabs = page.get_by_role("navigation", name="Workspace of acme")
    tabs.get_by_role("link", name="Environment Variables").click()
    page.get_by_role("link", name="Add new environment variable group").click()
    page.wait_for_load_state("load")  # the guard follows the label typed: its script runs
    assert "---------" not in page.locator("#id_organization").inner_text()
    page.get_by_label("Name:").fill("payments")
    page.get_by_label("Environment:").fill("production")
    # The guard: a staging project cannot be chosen for a production group, and says why.
    staging = page.locator("label.picker-option", has_text="staging_jobs")
    assert staging.locator("input").is_disabled()
    assert "labelled staging, this group is production" in staging.inner_text()
    page.locator("label.picker-option", has_text="production-api").locator("input").check()
    row = page.locator("#variables-0")  # a new group starts with one empty row
    row.locator("input[name$=name]").fill("STRIPE_KEY")
    row.locator("textarea").fill("sk_live_seed_path_9c1")
    row.get_by_role("checkbox", name="Secret").check()
    assert row.get_by_role("checkbox", name="Secret").is_checked()
    shoot(page, "group-new", width)
    page.get_by_role("button", name="Save", exact=True).click()
    # The impact comes first: what production-api will receive; nothing is saved yet.
    page.get_by_role("heading", name="This change affects 1 project.").wait_for()
    impact = page.locator("#impact-table").inner_text()
    assert "production-api" in impact and "STRIPE_KEY" in impact
    assert "sk_live_seed_path_9c1" not in page.content()
    assert not VariableGroup.objects.filter(name="payments").exists()
    no_horizontal_scroll(page)
    shoot(page, "impact-preview", width)
    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url("**/admin/orgs/acme/")
    assert "payments" in page.locator("#group-payments").inner_text()
    assert "1 secret" in page.locator("#group-payments").inner_text()
    assert "sk_live_seed_path_9c1" not in page.content()
    # The very next resolution of the chosen project gets it.
    layers = load_layers(Project.objects.get(slug="production-api"))
    assert plaintext(layers)["STRIPE_KEY"] == "sk_live_seed_path_9c1"
    assert "STRIPE_KEY" in layers.resolution.secrets
    no_horizontal_scroll(page)


def test_the_group_page_fits_and_never_shows_a_secret(page, demo, width) -> None:
    sign_in(page, demo)
    group = VariableGroup.objects.get(name="production-db")
    page.goto(f"{demo}/admin/orgenv/variablegroup/{group.pk}/change/")
    names = page.locator("#variables-group tr.has_original td.field-name input")
    assert names.count() == 3
    assert names.nth(0).is_visible()
    values = page.locator("#variables-group tr.has_original td.field-value textarea")
    assert values.nth(0).is_visible()  # 360 px too: the value, not only the name
    toggles = page.locator("#variables-group tr.has_original").get_by_role(
        "checkbox", name="Secret"
    )
    assert toggles.count() == 3
    assert "postgresql://user:pass" not in page.content()
    no_horizontal_scroll(page)
    shoot(page, "group", width)


def test_a_project_is_onboarded_from_its_own_page(page, demo, width) -> None:
    sign_in(page, demo)
    page.goto(f"{demo}/admin/orgs/acme/projects/")
    page.get_by_role("link", name="Add project").click()
    page.wait_for_load_state("load")  # the guard follows the label typed: its script runs
    page.get_by_label("Slug:").fill("batch-scoring")
    page.get_by_label("Name:", exact=True).fill("Batch scoring")
    page.get_by_label("Environment:").fill("production")
    groups = page.locator("#id_granted_groups")
    assert groups.locator("label", has_text="staging").first.locator("input").is_disabled()
    groups.locator("label", has_text="production-db").locator("input").check()
    groups.locator("label", has_text="external-apis").locator("input").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("heading", name="This change affects 1 project.").wait_for()
    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url("**/admin/orgenv/project/*/change/")
    effective = page.locator("#effective-environment")
    assert "group:production-db" in effective.inner_text()
    assert "group:external-apis" in effective.inner_text()
    assert "ENVIRONMENT" in effective.inner_text()  # runtime-production reaches all
    no_horizontal_scroll(page)
    shoot(page, "project", width)


def test_paste_env_proposes_a_secret_and_imports_all(page, demo, width) -> None:
    sign_in(page, demo)
    group = VariableGroup.objects.get(name="external-apis")
    page.goto(f"{demo}/admin/orgenv/variablegroup/{group.pk}/change/")
    page.get_by_role("link", name="Paste .env").click()
    page.get_by_label("Paste .env").fill("ANTHROPIC_API_KEY=sk-ant-pasted-41\nREQUEST_TIMEOUT=30\n")
    page.get_by_role("button", name="Review").click()
    assert page.get_by_role("checkbox", name="Secret ANTHROPIC_API_KEY").is_checked()
    assert not page.get_by_role("checkbox", name="Secret REQUEST_TIMEOUT").is_checked()
    assert "the name ends with _KEY" in page.locator("#paste-ANTHROPIC_API_KEY").inner_text()
    no_horizontal_scroll(page)
    shoot(page, "paste-env", width)
    page.get_by_role("button", name="Import 2 variables").click()
    page.locator("#impact-table").wait_for()
    assert "ANTHROPIC_API_KEY" in page.locator("#impact-table").inner_text()
    assert "sk-ant-pasted-41" not in page.content()
    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url(f"**/variablegroup/{group.pk}/change/")
    assert "2 created" in page.locator(".messagelist").inner_text()
    assert "sk-ant-pasted-41" not in page.content()
    stored = {v.name: v.is_secret for v in group.variables.all()}
    assert stored["ANTHROPIC_API_KEY"] is True and stored["REQUEST_TIMEOUT"] is False


def test_a_leaked_token_is_found_by_the_whole_token_and_revoked(
    page, demo, width, live_server
) -> None:
    project = Project.objects.get(slug="production-ml")
    token, plaintext = token_issue(project=project, name="training-cluster")
    token_issue(project=project, name="nightly")
    sign_in(page, demo)
    page.goto(f"{demo}/admin/orgs/acme/tokens/")
    page.get_by_label("Find a token").fill(plaintext)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(f"**/tokens/?q={token.prefix}")
    rows = page.locator("#tokens tbody tr")
    assert rows.count() == 1
    assert "active" in rows.first.inner_text()
    assert plaintext.split(".", 1)[1] not in page.content()
    rows.first.get_by_role("link", name="Revoke").click()
    assert "Every runner using it gets 401" in page.locator("#content-main").inner_text()
    shoot(page, "revoke-token", width)
    page.get_by_role("button", name="Yes, revoke").click()
    page.wait_for_url("**/admin/orgs/acme/tokens/")
    assert "revoked" in page.locator(f"#token-{token.prefix}").inner_text()
    response = page.request.get(
        f"{live_server.url}/api/v1/environment",
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    assert response.status == 401
    no_horizontal_scroll(page)
    shoot(page, "tokens", width)


def test_a_rotation_shows_in_the_groups_history(page, demo, width) -> None:
    sign_in(page, demo)
    group = VariableGroup.objects.get(name="production")
    page.goto(f"{demo}/admin/orgenv/variablegroup/{group.pk}/change/")
    row = page.locator(
        "#variables-group tr.has_original", has=page.locator("input[value=PRODUCTION_SECRET]")
    )
    row.locator("textarea").fill("rotated-in-the-browser-77")
    page.get_by_role("button", name="Save and continue editing").click()
    assert "PRODUCTION_SECRET" in page.locator("#impact-table").inner_text()
    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url(f"**/variablegroup/{group.pk}/change/")
    page.get_by_role("link", name="History").click()
    changes = page.locator("#group-changes")
    first = changes.locator("tbody tr").first.inner_text()
    assert "variable PRODUCTION_SECRET in group production" in first
    assert "value changed" in first and "admin" in first
    assert "rotated-in-the-browser-77" not in page.content()
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "rotated-in-the-browser-77"
    no_horizontal_scroll(page)
    shoot(page, "group-history", width)


def test_a_token_is_issued_once_with_a_copy_button(page, demo, width) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, demo)
    page.goto(f"{demo}/admin/orgs/acme/tokens/")
    page.get_by_role("link", name="Issue a token").click()
    page.get_by_label("Project:").select_option(label="acme/production-ml")
    page.get_by_label("Name:").fill("training-cluster")
    page.get_by_role("button", name="Save", exact=True).click()
    token = ProjectToken.objects.get(name="training-cluster")
    assert 89 <= (token.expires_at - token.created_at).days <= 90  # TOKEN_DEFAULT_DAYS
    field = page.get_by_label("The new token")
    plaintext = field.input_value()
    assert plaintext.startswith(token.prefix + ".")
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("status").filter(has_text="Copied.").wait_for()  # after the promise
    assert page.evaluate("navigator.clipboard.readText()") == plaintext
    no_horizontal_scroll(page)
    shoot(page, "token-issued", width)


def test_the_token_list_shows_every_status_at_1280(page, demo) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    project = Project.objects.get(slug="production-ml")
    revoked, _ = token_issue(project=project, name="old-runner")
    token_revoke(token=revoked)
    sign_in(page, demo)
    page.goto(f"{demo}/admin/orgenv/projecttoken/")
    for column in ("Status", "Expires at", "Last used at"):
        header = page.locator("#result_list thead th", has_text=column)
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, column
    assert "revoked" in page.locator("#result_list tbody tr", has_text="old-runner").inner_text()
    no_horizontal_scroll(page)
