"""Member pages through the test client: who sees which project, masking, 404 rule, headers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from orgenv.models import Project, ProjectVariable, Team
from orgenv.resolution import Conflict
from orgenv.views import conflict_sentence
from tests.conftest import World, make_group

SECRET = "s3cr3t-Pr0d-Value-8f2a"
SHADOWED_SECRET = "older-shadowed-secret-77c1"

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(world: World) -> World:
    """On top of the personas: a staging project `jobs` reached by bob through team ml, and
    groups covering a secret, a multi-line value, a conflict and an override."""
    ml = Team.objects.create(organization=world.acme, slug="ml")
    ml.members.add(world.bob)
    jobs = Project.objects.create(
        organization=world.acme, slug="jobs", name="Jobs", environment="staging"
    )
    jobs.teams.add(ml)
    Project.objects.create(organization=world.acme, slug="hidden", name="Hidden")
    make_group(
        world.acme,
        "production",
        environment="production",
        variables={"PRODUCTION_ENVVAR": "production"},
        secrets={"PRODUCTION_SECRET": SECRET},
        projects=[world.web],
    )
    make_group(
        world.acme,
        "alpha",
        access="all",
        variables={"REGION": "eu-west-1", "CERT": "line one\nline two"},
    )
    make_group(world.acme, "beta", access="all", variables={"REGION": "us-east-1"})
    make_group(
        world.acme,
        "old",
        priority=-1,
        secrets={"PRODUCTION_SECRET": SHADOWED_SECRET},
        projects=[world.web],
    )
    make_group(world.acme, "staging", environment="staging", access="all", variables={"S": "1"})
    ProjectVariable.objects.create(project=world.web, name="REGION", value="ap-south-1")
    make_group(world.globex, "globex-only", access="all", secrets={"GLOBEX": "globex-secret"})
    world.jobs = jobs
    return world


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def env_url(org: str, project: str) -> str:
    return f"/orgs/{org}/projects/{project}/environment/"


def test_anonymous_visitors_are_sent_to_sign_in(acme: World) -> None:
    for url in ("/", env_url("acme", "web")):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_home_lists_a_members_projects_direct_and_through_a_team(acme: World) -> None:
    page = signed_in(acme.bob).get("/").content.decode()
    assert "Hi, bob" in page
    assert env_url("acme", "web") in page
    assert env_url("acme", "jobs") in page  # through team ml
    assert env_url("acme", "hidden") not in page
    assert env_url("globex", "app") not in page
    assert "Manage acme" not in page


def test_home_lists_every_project_of_an_administered_organization(acme: World) -> None:
    page = signed_in(acme.alice).get("/").content.decode()
    for slug in ("web", "jobs", "hidden"):
        assert env_url("acme", slug) in page
    assert env_url("globex", "app") not in page
    assert "Manage acme" in page
    assert 'href="/admin/orgs/acme/"' in page  # the organization's workspace


def test_home_shows_environment_labels_and_counts(acme: World) -> None:
    page = signed_in(acme.bob).get("/").content.decode()
    # web: PRODUCTION_ENVVAR, PRODUCTION_SECRET, REGION, CERT (staging is guarded out).
    assert "4 variables, of which 1 secret" in page
    # jobs: REGION, CERT, S.
    assert "3 variables, of which 0 secrets" in page
    assert ">production<" in page and ">staging<" in page


def test_home_runs_two_queries_per_project(acme: World, django_assert_num_queries) -> None:
    client = signed_in(acme.bob)
    # session, user; readable projects; then per project (bob reads 2): groups, then group
    # and project variables in one query. bob is not staff, so no admin membership can count
    # and orgenv.access asks nothing more (section notes, header).
    # And bob's pending invitations (orgenv.people).
    with django_assert_num_queries(3 + 2 * 2 + 1):
        client.get("/")


def test_a_secret_is_masked_and_its_value_never_in_the_page(acme: World) -> None:
    response = signed_in(acme.bob).get(env_url("acme", "web"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "PRODUCTION_SECRET" in page
    assert "••••••" in page
    assert SECRET not in page
    assert SHADOWED_SECRET not in page
    assert "production" in page  # the public value is shown


def test_an_org_admin_also_sees_secrets_masked_but_gets_edit_links(acme: World) -> None:
    page = signed_in(acme.alice).get(env_url("acme", "web")).content.decode()
    assert SECRET not in page and SHADOWED_SECRET not in page
    production = acme.web.granted_groups.get(name="production")
    assert f"/admin/orgenv/variablegroup/{production.pk}/change/" in page
    assert f"/admin/orgenv/project/{acme.web.pk}/change/" in page


def test_a_member_gets_no_edit_links(acme: World) -> None:
    page = signed_in(acme.bob).get(env_url("acme", "web")).content.decode()
    assert "/admin/orgenv/" not in page


def test_a_project_override_shows_the_public_value_it_overrides(acme: World) -> None:
    page = signed_in(acme.bob).get(env_url("acme", "web")).content.decode()
    row = page.split('id="var-REGION"')[1].split("</tr>")[0]
    assert "ap-south-1" in row  # the winner, from the project
    assert "Overrides" in row
    assert "eu-west-1" in row and "us-east-1" in row


def test_a_conflict_is_explained_in_a_sentence(acme: World) -> None:
    page = signed_in(acme.bob).get(env_url("acme", "jobs")).content.decode()
    assert (
        "REGION is defined by groups alpha and beta at the same priority 0; "
        "alpha wins because its name sorts first."
    ) in page


def test_conflict_sentence_lists_every_tied_group() -> None:
    conflict = Conflict("X", "group:a", ("group:b", "group:c"))
    assert conflict_sentence(conflict, {"a": 5, "b": 5, "c": 5}) == (
        "X is defined by groups a, b and c at the same priority 5; a wins because its name "
        "sorts first."
    )


def test_a_multi_line_value_keeps_its_lines(acme: World) -> None:
    page = signed_in(acme.bob).get(env_url("acme", "jobs")).content.decode()
    assert '<pre class="value">line one\nline two</pre>' in page


def test_groups_skipped_by_the_environment_guard_are_listed_for_admins_only(acme: World) -> None:
    heading = "Groups skipped by the environment guard"
    admin_page = signed_in(acme.alice).get(env_url("acme", "web")).content.decode()
    assert heading in admin_page and "group is &#x27;staging&#x27;" in admin_page
    assert heading not in signed_in(acme.bob).get(env_url("acme", "web")).content.decode()


@pytest.mark.parametrize(
    ("user", "org", "project"),
    [
        ("bob", "acme", "hidden"),  # same organization, not a member
        ("bob", "globex", "app"),  # another organization
        ("charlie", "acme", "web"),  # an admin of another organization
        ("bob", "acme", "does-not-exist"),
        ("bob", "nope", "web"),
    ],
)
def test_a_project_the_user_may_not_read_is_a_404(
    acme: World, user: str, org: str, project: str
) -> None:
    response = signed_in(User.objects.get(username=user)).get(env_url(org, project))
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page
    assert "globex-secret" not in page and SECRET not in page


def test_member_pages_are_never_cached(acme: World) -> None:
    client = signed_in(acme.bob)
    for url in ("/", env_url("acme", "web")):
        assert "no-store" in client.get(url)["Cache-Control"]


def test_signing_in_through_the_form_lands_on_the_project_list(acme: World) -> None:
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": "bob-password"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert "Hi, bob" in response.content.decode()


def test_a_wrong_password_says_so_on_the_login_page(acme: World) -> None:
    response = Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


def test_too_many_failures_lock_sign_in_with_a_clear_message(acme: World, settings) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    response = client.post("/accounts/login/", {"username": "bob", "password": "bob-password"})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-in attempts for bob" in page
    assert "Sign-in locked" in page


def test_sign_out_is_a_post(acme: World) -> None:
    client = signed_in(acme.bob)
    page = client.get("/").content.decode()
    assert '<form method="post" action="/accounts/logout/">' in page
    # A GET only asks: a link or an embedded image must not sign anyone out.
    asking = client.get("/accounts/logout/")
    assert asking.status_code == 200 and b"You are signed in as bob" in asking.content
    assert client.get("/").status_code == 200  # still signed in
    response = client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[0][0] == "/accounts/login/"
    assert b"You have signed out." in response.content
    assert client.get("/").status_code == 302
