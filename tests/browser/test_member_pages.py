"""The member pages in a real browser (Debian's Chromium through Playwright).

The data mirrors the demo: alice is a member of staging_jobs and of team ml; admin is an
organization admin of acme; globex is another organization whose objects acme's admin must
never see.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from orgenv.models import Membership, Organization, Project, ProjectVariable, Team
from tests.conftest import make_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAGING_SECRET = "stg-Zq7x-distinctive-secret-41d9"
PRODUCTION_SECRET = "prd-Kw3m-distinctive-secret-90ab"
GLOBEX_GROUP = "globex-payments"


@dataclass
class Demo:
    url: str


@pytest.fixture
def demo(live_server) -> Demo:
    acme = Organization.objects.create(slug="acme", name="Acme ML")
    globex = Organization.objects.create(slug="globex", name="Globex")
    admin = User.objects.create_user("admin", password="admin", is_staff=True)
    alice = User.objects.create_user("alice", password="alice")
    Membership.objects.create(user=admin, organization=acme, role="admin")
    Membership.objects.create(user=alice, organization=acme, role="member")

    def project(slug: str, environment: str) -> Project:
        return Project.objects.create(
            organization=acme, slug=slug, name=slug.replace("_", " "), environment=environment
        )

    production_db = project("production_db", "production")
    staging_jobs = project("staging_jobs", "staging")
    production_ml = project("production-ml", "production")
    dev_experiments = project("dev-experiments", "development")
    staging_jobs.members.add(alice)
    ml = Team.objects.create(organization=acme, slug="ml")
    ml.members.add(alice)
    production_ml.teams.add(ml)
    dev_experiments.teams.add(ml)

    make_group(
        acme,
        "production",
        environment="production",
        variables={"PRODUCTION_ENVVAR": "production"},
        secrets={"PRODUCTION_SECRET": PRODUCTION_SECRET},
        projects=[production_db],
    )
    make_group(
        acme,
        "staging",
        environment="staging",
        variables={"STAGING_ENVVAR": "staging"},
        secrets={"STAGING_SECRET": STAGING_SECRET},
        projects=[staging_jobs],
    )
    make_group(
        acme,
        "shared-infrastructure",
        access="all",
        variables={
            "DOCKER_REGISTRY_URL": "registry.acme.example.com",
            "SHARED_S3_BUCKET": "s3://acme-shared",
            "API_ENDPOINT": "https://api.production.example.com/a/very/long/path/that/must/wrap",
        },
    )
    make_group(
        acme,
        "ml-training-secrets",
        variables={"MLFLOW_TRACKING_URI": "https://mlflow.acme.example.com"},
        secrets={"WANDB_API_KEY": "wandb-demo-key"},
        teams=[ml],
    )
    # On dev-experiments: an override, a conflict and a multi-line value.
    ProjectVariable.objects.create(
        project=dev_experiments, name="API_ENDPOINT", value="https://api.dev.example.com"
    )
    make_group(
        acme,
        "datasets-a",
        variables={"DATASET": "s3://acme-a/train", "TRAIN_CONFIG": "epochs: 3\nlr: 0.001"},
        teams=[ml],
    )
    make_group(acme, "datasets-b", variables={"DATASET": "s3://acme-b/train"}, teams=[ml])
    globex_app = Project.objects.create(organization=globex, slug="app", name="App")
    make_group(globex, GLOBEX_GROUP, access="all", secrets={"STRIPE_KEY": "sk-globex"})
    assert globex_app.pk
    return Demo(live_server.url)


def sign_in(page, demo: Demo, username: str, password: str) -> None:
    page.goto(f"{demo.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{demo.url}/")


def test_alice_signs_in_and_sees_her_projects(page, demo: Demo) -> None:
    sign_in(page, demo, "alice", "alice")
    assert page.get_by_text("Hi, alice").is_visible()
    projects = page.locator(".project-card .project-link").all_inner_texts()
    assert projects == ["dev-experiments", "production-ml", "staging jobs"]
    card = page.locator(".project-card", has_text="staging_jobs")
    assert "staging" in card.locator(".badge").inner_text()
    # STAGING_ENVVAR, STAGING_SECRET and the three shared-infrastructure variables.
    assert "5 variables, of which 1 secret" in card.inner_text()


def test_alice_sees_the_staging_secret_masked_and_never_receives_it(page, demo: Demo) -> None:
    bodies: dict[str, bytes] = {}

    def record(response) -> None:
        # Read each body as it arrives: a later navigation may evict it from the browser.
        if not 300 <= response.status < 400:  # a redirect has no body to read
            bodies[response.url] = response.body()

    page.on("response", record)
    sign_in(page, demo, "alice", "alice")
    page.get_by_role("link", name="staging jobs").click()
    page.wait_for_url("**/orgs/acme/projects/staging_jobs/environment/")
    page.wait_for_load_state("networkidle")

    row = page.locator("#var-STAGING_SECRET")
    assert row.locator("td[data-label=Value]").inner_text().startswith("••••••")
    assert page.locator("#var-STAGING_ENVVAR pre.value").inner_text() == "staging"
    assert "group staging" in row.locator("td[data-label=Source]").inner_text()
    assert STAGING_SECRET not in page.content()

    # The document, its stylesheet and its script were all loaded and checked.
    assert any(url.endswith("/environment/") for url in bodies)
    assert any(url.endswith("orgenv.css") for url in bodies)
    assert any(url.endswith("filter.js") for url in bodies)
    for url, body in bodies.items():
        assert STAGING_SECRET.encode() not in body, url
        assert PRODUCTION_SECRET.encode() not in body, url


def test_alice_cannot_open_production_db(page, demo: Demo) -> None:
    sign_in(page, demo, "alice", "alice")
    response = page.goto(f"{demo.url}/orgs/acme/projects/production_db/environment/")
    assert response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    assert PRODUCTION_SECRET not in page.content()
    assert "PRODUCTION_ENVVAR" not in page.content()


def test_admin_follows_manage_acme_into_an_admin_limited_to_acme(page, demo: Demo) -> None:
    sign_in(page, demo, "admin", "admin")
    page.get_by_text("Hi, admin").click()
    manage = page.locator(".user-menu").get_by_role("link", name="Manage acme")
    assert manage.is_visible()
    manage.click()
    page.wait_for_url("**/admin/orgs/acme/")
    assert "/accounts/login/" not in page.url and "/admin/login/" not in page.url
    listed = page.locator("#groups").inner_text()
    assert "staging" in listed and "shared-infrastructure" in listed
    assert GLOBEX_GROUP not in page.content()


def test_overrides_conflicts_and_multi_line_values_are_shown(page, demo: Demo) -> None:
    sign_in(page, demo, "alice", "alice")
    page.get_by_role("link", name="dev-experiments").click()
    page.wait_for_url("**/orgs/acme/projects/dev-experiments/environment/")

    endpoint = page.locator("#var-API_ENDPOINT")
    assert endpoint.locator("pre.value").first.inner_text() == "https://api.dev.example.com"
    assert endpoint.locator("td[data-label=Source]").inner_text().startswith("project")
    overrides = endpoint.locator("td[data-label=Overrides]").inner_text()
    assert "Overrides" in overrides and "shared-infrastructure" in overrides
    assert "https://api.production.example.com" in overrides

    assert page.locator("#var-DATASET .conflict").inner_text() == (
        "Conflict: DATASET is defined by groups datasets-a and datasets-b at the same "
        "priority 0; datasets-a wins because its name sorts first."
    )
    assert page.locator("#var-TRAIN_CONFIG pre.value").inner_text() == "epochs: 3\nlr: 0.001"
    assert page.locator("#var-WANDB_API_KEY td[data-label=Value]").inner_text().startswith("••")
    assert "wandb-demo-key" not in page.content()


def test_the_filter_box_filters_the_variables(page, demo: Demo) -> None:
    sign_in(page, demo, "alice", "alice")
    page.goto(f"{demo.url}/orgs/acme/projects/staging_jobs/environment/")
    rows = page.locator("#variables tbody tr")
    assert rows.count() == 5
    page.get_by_label("Filter variables").fill("staging")
    visible = [r for r in rows.all() if r.is_visible()]
    assert sorted(r.get_attribute("id") for r in visible) == [
        "var-STAGING_ENVVAR",
        "var-STAGING_SECRET",
    ]
    assert page.get_by_role("status").inner_text() == "2 of 5 shown"
    page.get_by_label("Filter variables").fill("no-such-variable")
    assert page.get_by_text("No variable matches the filter.").is_visible()
    page.get_by_label("Filter variables").fill("")
    assert len([r for r in rows.all() if r.is_visible()]) == 5
    page.get_by_label("Filter variables").fill("secret")  # the state the screenshot shows
    assert [r.get_attribute("id") for r in rows.all() if r.is_visible()] == ["var-STAGING_SECRET"]


def test_without_javascript_every_variable_shows_and_no_filter_box(
    browser, demo: Demo, request
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, demo, "alice", "alice")
        page.goto(f"{demo.url}/orgs/acme/projects/staging_jobs/environment/")
        assert page.locator("#variables tbody tr:visible").count() == 5
        assert not page.get_by_label("Filter variables").is_visible()
        page.get_by_text("Hi, alice").click()  # <details> opens without JavaScript
        assert page.get_by_role("button", name="Sign out").is_visible()
        save_screenshot(page, request)
    finally:
        context.close()


def test_the_pages_fit_a_360_pixel_screen(page, demo: Demo) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, demo, "alice", "alice")
    for path in ("/", "/orgs/acme/projects/staging_jobs/environment/", "/accounts/login/"):
        page.goto(f"{demo.url}{path}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} overflows by {overflow}px at 360px"
    page.goto(f"{demo.url}/orgs/acme/projects/staging_jobs/environment/")


def test_signing_out_returns_to_the_login_page(page, demo: Demo) -> None:
    sign_in(page, demo, "alice", "alice")
    page.get_by_text("Hi, alice").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")
    page.goto(f"{demo.url}/")
    assert "/accounts/login/" in page.url


def save_screenshot(page, request) -> None:
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)


def test_a_wrong_password_and_then_a_lockout_are_explained(page, demo: Demo, settings) -> None:
    page.goto(f"{demo.url}/accounts/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("not-her-password")
        page.get_by_role("button", name="Sign in").click()
        if page.get_by_role("heading", name="Sign-in locked").count():
            break
        assert page.get_by_role("alert").inner_text().startswith("Please enter a correct")
    page.goto(f"{demo.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("heading", name="Sign-in locked").is_visible()
    assert "Too many failed sign-in attempts for alice" in page.get_by_role("alert").inner_text()
