"""The organization workspace (/admin/orgs/<org>/…): who lands where, what each tab lists,
and that every tab and form stays inside the organizations the user administers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orgenv.models import Membership, Project, ProjectVariable, Team, VariableGroup
from orgenv.selectors.workspace import (
    compare_projects,
    group_summaries,
    project_summaries,
    reach_text,
    token_search_prefix,
)
from orgenv.tokens import token_issue
from tests.conftest import make_group

pytestmark = pytest.mark.django_db

TABS = ("", "projects/", "compare/", "tokens/", "audit/")


def test_an_admin_of_one_organization_lands_in_its_workspace(client, world):
    client.force_login(world.alice)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/orgs/acme/"
    page = client.get("/admin/orgs/acme/").content.decode()
    for tab in ("Environment Variables", "Projects", "People", "Tokens", "Audit"):
        assert f">{tab}</a>" in page
    assert "Add new environment variable group" in page


def test_an_admin_of_several_organizations_picks_one(client, world):
    Membership.objects.create(user=world.alice, organization=world.globex, role="admin")
    client.force_login(world.alice)
    response = client.get("/admin/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/admin/orgs/acme/"' in page and 'href="/admin/orgs/globex/"' in page
    # and each workspace offers the switch to the other
    assert 'href="/admin/orgs/globex/"' in client.get("/admin/orgs/acme/").content.decode()


@pytest.mark.parametrize("tab", TABS)
def test_another_organizations_admin_gets_404_on_every_tab(client, world, tab):
    client.force_login(world.charlie)
    assert client.get(f"/admin/orgs/acme/{tab}").status_code == 404
    assert client.get(f"/admin/orgs/no-such-org/{tab}").status_code == 404
    assert client.get(f"/admin/orgs/globex/{tab}").status_code == 200


@pytest.mark.parametrize("tab", TABS)
def test_a_member_and_a_non_staff_admin_are_sent_to_sign_in(client, world, tab):
    world.alice.is_staff = False
    world.alice.save()
    for user in (world.bob, world.alice):
        client.force_login(user)
        response = client.get(f"/admin/orgs/acme/{tab}")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_variables_tab_lists_only_this_organizations_groups_with_reach_and_counts(
    client, world
):
    ml = Team.objects.create(organization=world.acme, slug="ml")
    make_group(
        world.acme, "db", environment="production", secrets={"DB_PASSWORD": "x"},
        variables={"DB_HOST": "h"}, projects=[world.web],
    )  # fmt: skip
    make_group(world.acme, "tracking", variables={"MLFLOW": "m"}, teams=[ml])
    make_group(world.acme, "everywhere", access="all", variables={"REGION": "eu"})
    make_group(world.globex, "globex-payments", access="all", secrets={"STRIPE": "s"})
    client.force_login(world.alice)
    page = client.get("/admin/orgs/acme/").content.decode()
    assert "globex-payments" not in page
    by_name = {s.group.name: s for s in group_summaries(world.acme)}
    assert by_name["db"].reach == "web"
    assert (by_name["db"].variables, by_name["db"].secrets) == (2, 1)
    assert by_name["tracking"].reach == "team ml"
    assert by_name["everywhere"].reach == "all projects"
    assert by_name["everywhere"].reached == ["web"]
    assert by_name["db"].changed_by == ""  # created in the test, by nobody
    assert 'id="group-db"' in page and "1 secret" in page


def test_last_change_counts_the_variables_and_names_who_made_it(client, world):
    group = make_group(world.acme, "db", secrets={"DB_PASSWORD": "x"})
    client.force_login(world.alice)
    variable = group.variables.get()
    data = {
        "name": "db", "description": "", "environment": "", "priority": "0",
        "access": "selected", "_save": "Save",
        "variables-TOTAL_FORMS": "1", "variables-INITIAL_FORMS": "1",
        "variables-MIN_NUM_FORMS": "0", "variables-MAX_NUM_FORMS": "1000",
        "variables-0-id": str(variable.pk), "variables-0-group": str(group.pk),
        "variables-0-name": "DB_PASSWORD", "variables-0-value": "rotated",
        "variables-0-is_secret": "on",
    }  # fmt: skip
    response = client.post(f"/admin/orgenv/variablegroup/{group.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    [summary] = group_summaries(world.acme)
    assert summary.changed_by == "alice"


def test_reach_is_said_in_words():
    assert reach_text("all", [], []) == "all projects"
    assert reach_text("selected", ["a"], []) == "a"
    assert reach_text("selected", ["a", "b", "c"], []) == "3 projects"
    assert reach_text("selected", ["a", "b"], ["ml"]) == "2 projects + team ml"
    assert reach_text("selected", [], ["data", "ml"]) == "teams data, ml"
    assert reach_text("selected", [], []) == "no project yet"


def test_group_summaries_take_eight_queries_whatever_the_number_of_groups(
    world, django_assert_num_queries
):
    for i in range(6):
        make_group(world.acme, f"g{i}", variables={"A": "1"}, secrets={"B": "2"}, projects=[])
    # grant_matrix: projects, groups, selected grants, team grants, project teams, last
    # runs; then the groups with counts and last changes; then the team grant names.
    with django_assert_num_queries(8):
        summaries = group_summaries(world.acme)
    assert len(summaries) == 6


def test_the_add_link_presets_the_organization_and_scopes_the_choices(client, world):
    Project.objects.create(organization=world.acme, slug="api", name="API")
    client.force_login(world.charlie)
    Membership.objects.create(user=world.charlie, organization=world.acme, role="admin")
    page = client.get("/admin/orgenv/variablegroup/add/?organization=acme").content.decode()
    assert "---------" not in page
    assert f'<option value="{world.acme.pk}" selected>' in page
    assert f'value="{world.globex.pk}"' not in page  # no other organization to choose
    assert ">app<" not in page and "globex/app" not in page  # nor its projects


def test_a_tampered_add_post_cannot_use_another_organization(client, world):
    client.force_login(world.alice)
    base = {
        "description": "", "environment": "", "priority": "0", "access": "selected",
        "variables-TOTAL_FORMS": "0", "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0", "variables-MAX_NUM_FORMS": "1000", "_save": "Save",
    }  # fmt: skip
    url = "/admin/orgenv/variablegroup/add/?organization=acme"
    response = client.post(url, {**base, "name": "stolen", "organization": world.globex.pk})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    response = client.post(
        url,
        {**base, "name": "sneaky", "organization": world.acme.pk,
         "projects": [world.globex_app.pk]},
    )  # fmt: skip
    assert response.status_code == 200
    assert not VariableGroup.objects.filter(name__in=["stolen", "sneaky"]).exists()


def test_a_full_token_finds_its_row_and_the_secret_part_is_dropped(client, world):
    token, plaintext = token_issue(project=world.web, name="ci")
    token_issue(project=world.web, name="other")
    assert token_search_prefix(plaintext) == token.prefix
    assert token_search_prefix("  web ") == "web"
    client.force_login(world.alice)
    response = client.get("/admin/orgs/acme/tokens/", {"q": plaintext}, follow=True)
    # the secret part leaves the URL at once: redirected to the public part
    assert response.redirect_chain == [(f"/admin/orgs/acme/tokens/?q={token.prefix}", 302)]
    page = response.content.decode()
    assert f'id="token-{token.prefix}"' in page
    assert ">other</a>" not in page
    secret = plaintext.split(".", 1)[1]
    assert secret not in page
    # the admin's own token list searches the same way
    response = client.get("/admin/orgenv/projecttoken/", {"q": plaintext}, follow=True)
    listing = response.content.decode()
    assert token.prefix in listing and ">other<" not in listing and secret not in listing


def test_revoke_asks_first_then_revokes(client, world):
    token, _ = token_issue(project=world.web, name="ci")
    client.force_login(world.alice)
    url = f"/admin/orgenv/projecttoken/{token.pk}/revoke/"
    page = client.get(url).content.decode()
    assert "Yes, revoke" in page and token.prefix in page
    token.refresh_from_db()
    assert token.revoked_at is None
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == "/admin/orgs/acme/tokens/"
    token.refresh_from_db()
    assert token.revoked_at is not None
    # the token's page offers Revoke only while there is something to revoke
    change = f"/admin/orgenv/projecttoken/{token.pk}/change/"
    assert url not in client.get(change).content.decode()


def test_another_organizations_admin_cannot_revoke(client, world):
    token, _ = token_issue(project=world.web, name="ci")
    client.force_login(world.charlie)
    url = f"/admin/orgenv/projecttoken/{token.pk}/revoke/"
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_tokens_expire_after_the_default_lifetime_unless_never_is_chosen(client, world, settings):
    settings.TOKEN_DEFAULT_DAYS = 90
    token, _ = token_issue(project=world.web, name="default")
    assert 89 <= (token.expires_at - token.created_at).days <= 90
    never, _ = token_issue(project=world.web, name="forever", never_expires=True)
    assert never.expires_at is None
    client.force_login(world.alice)
    client.post(
        "/admin/orgenv/projecttoken/add/",
        {"project": world.web.pk, "name": "from-admin", "_save": "Save"},
    )
    issued = world.web.tokens.get(name="from-admin")
    assert 89 <= (issued.expires_at - issued.created_at).days <= 90


def test_compare_names_what_one_project_of_an_environment_lacks(client, world):
    api = Project.objects.create(
        organization=world.acme, slug="api", name="API", environment="production"
    )
    make_group(
        world.acme, "db", environment="production", secrets={"DATABASE_URL": "postgres://x"},
        projects=[world.web],
    )  # fmt: skip
    ProjectVariable.objects.create(project=api, name="FEATURE", value="on")
    comparison = compare_projects(world.acme)
    assert [p.slug for p in comparison.projects] == ["api", "web"]
    assert comparison.gaps == [
        "DATABASE_URL is set for web but not api (production).",
        "FEATURE is set for api but not web (production).",
    ]
    client.force_login(world.alice)
    page = client.get("/admin/orgs/acme/compare/").content.decode()
    assert "DATABASE_URL is set for web but not api (production)." in page
    assert "postgres://x" not in page  # a secret shows as the mask
    assert ">on<" in page  # a public value shows


def test_a_people_tab_and_audit_links_stay_in_the_organization(client, world):
    group = make_group(world.acme, "db", variables={"A": "1"})
    client.force_login(world.alice)
    page = client.get(f"/admin/orgenv/variablegroup/{group.pk}/change/").content.decode()
    assert 'href="/admin/orgs/acme/audit/?group=db"' in page
    assert 'aria-current="page">Environment Variables<' in page
    project_page = client.get(f"/admin/orgenv/project/{world.web.pk}/change/").content.decode()
    assert 'href="/admin/orgs/acme/audit/?project=web"' in project_page


def test_superusers_see_every_organization_to_pick_from(client, world):
    root = User.objects.create_superuser("root", password="root-password")
    client.force_login(root)
    page = client.get("/admin/").content.decode()
    assert 'href="/admin/orgs/acme/"' in page and 'href="/admin/orgs/globex/"' in page


def test_project_summaries_take_seven_queries_whatever_the_number_of_projects(
    world, django_assert_num_queries
):
    for i in range(5):
        project = Project.objects.create(organization=world.acme, slug=f"p{i}", name=f"P{i}")
        token_issue(project=project, name="ci")
    # grant_matrix: projects, groups, selected grants, team grants, project teams, last
    # runs; then the projects with their variable and live token counts.
    with django_assert_num_queries(7):
        summaries = project_summaries(world.acme)
    assert len(summaries) == 6
    assert {s.project.slug: s.active_tokens for s in summaries}["p0"] == 1


def test_a_tampered_token_post_cannot_issue_for_another_organization(client, world):
    client.force_login(world.alice)
    response = client.post(
        "/admin/orgenv/projecttoken/add/?organization=acme",
        {"project": world.globex_app.pk, "name": "stolen", "_save": "Save"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not world.globex_app.tokens.exists()
