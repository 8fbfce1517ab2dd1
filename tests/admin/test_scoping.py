"""Tenancy in the admin: what each persona lists, may choose, may save."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orgenv.models import Membership, Organization, Project, Team, VariableGroup
from tests.conftest import make_group

pytestmark = pytest.mark.django_db

GROUPS = "/admin/orgenv/variablegroup/"


def group_form(org: Organization, name: str, **fields: object) -> dict[str, object]:
    """The POST of the group add page, with no variables."""
    data: dict[str, object] = {
        "organization": str(org.pk),
        "name": name,
        "description": "",
        "environment": "",
        "priority": "0",
        "access": "selected",
        "variables-TOTAL_FORMS": "0",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    data.update(fields)
    return data


def test_alice_lists_only_acme_groups(client, world):
    make_group(world.acme, "acme-shared")
    make_group(world.globex, "globex-shared")
    client.force_login(world.alice)
    html = client.get(GROUPS).content.decode()
    assert "acme-shared" in html
    assert "globex-shared" not in html


def test_charlie_lists_only_globex_groups(client, world):
    make_group(world.acme, "acme-shared")
    make_group(world.globex, "globex-shared")
    client.force_login(world.charlie)
    html = client.get(GROUPS).content.decode()
    assert "globex-shared" in html
    assert "acme-shared" not in html


def test_charlie_cannot_open_or_change_an_acme_group(client, world):
    group = make_group(world.acme, "acme-shared", description="before")
    client.force_login(world.charlie)
    # The admin answers an object outside the queryset as "does not exist".
    assert client.get(f"{GROUPS}{group.pk}/change/").status_code == 302
    assert client.get(f"{GROUPS}{group.pk}/history/").status_code == 404
    client.post(f"{GROUPS}{group.pk}/change/", group_form(world.acme, "x", description="after"))
    group.refresh_from_db()
    assert (group.name, group.description) == ("acme-shared", "before")


def test_a_staff_user_without_an_admin_membership_sees_nothing(client, world):
    dave = User.objects.create_user("dave", password="x", is_staff=True)
    Membership.objects.create(user=dave, organization=world.acme, role="member")
    make_group(world.acme, "acme-shared")
    client.force_login(dave)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "/admin/orgenv/" not in index.content.decode()
    assert client.get(GROUPS).status_code == 403
    assert client.get("/admin/orgenv/project/").status_code == 403


def test_the_index_shows_an_org_admin_only_what_they_manage(client, world):
    # An admin of one organization lands in its workspace (tests/admin/test_workspace.py);
    # an admin of several gets the index, which lists only what they manage.
    Membership.objects.create(user=world.alice, organization=world.globex, role="admin")
    client.force_login(world.alice)
    html = client.get("/admin/").content.decode()
    assert 'href="/admin/orgenv/variablegroup/"' in html
    assert 'href="/admin/orgenv/projecttoken/"' in html
    assert "/admin/auth/user/" not in html
    assert "orgenv administration" in html


def test_add_page_choices_list_only_the_users_own_organization(client, world):
    Team.objects.create(organization=world.acme, slug="ml")
    Team.objects.create(organization=world.globex, slug="globex-team")
    client.force_login(world.alice)
    html = client.get(f"{GROUPS}add/").content.decode()
    assert f'value="{world.web.pk}"' in html
    assert f'value="{world.globex_app.pk}"' not in html
    assert ">team ml<" in html
    assert "globex-team" not in html
    assert ">globex<" not in html  # organization choices


def test_change_page_choices_list_only_the_objects_organization(client, world):
    Membership.objects.create(user=world.alice, organization=world.globex, role="admin")
    group = make_group(world.acme, "acme-shared")
    client.force_login(world.alice)
    html = client.get(f"{GROUPS}{group.pk}/change/").content.decode()
    assert f'value="{world.web.pk}"' in html
    assert f'value="{world.globex_app.pk}"' not in html


def test_a_tampered_post_attaching_another_orgs_project_is_refused(client, world):
    group = make_group(world.acme, "acme-shared")
    client.force_login(world.alice)
    data = group_form(world.acme, "acme-shared", projects=[str(world.globex_app.pk)])
    response = client.post(f"{GROUPS}{group.pk}/change/", data)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert list(group.projects.all()) == []


def test_a_tampered_add_with_another_orgs_project_saves_nothing(client, world):
    client.force_login(world.alice)
    data = group_form(world.acme, "sneaky", projects=[str(world.globex_app.pk)])
    response = client.post(f"{GROUPS}add/", data)
    assert response.status_code == 200
    assert not VariableGroup.objects.filter(name="sneaky").exists()


def test_an_admin_of_two_organizations_cannot_mix_them_in_one_group(client, world):
    Membership.objects.create(user=world.alice, organization=world.globex, role="admin")
    client.force_login(world.alice)
    data = group_form(world.acme, "mixed", projects=[str(world.globex_app.pk)])
    response = client.post(f"{GROUPS}add/", data)
    assert response.status_code == 200
    assert "belongs to another organization" in response.content.decode()
    assert not VariableGroup.objects.filter(name="mixed").exists()


def test_a_tampered_post_cannot_create_a_group_in_another_organization(client, world):
    client.force_login(world.alice)
    response = client.post(f"{GROUPS}add/", group_form(world.globex, "planted"))
    assert response.status_code == 200
    assert not VariableGroup.objects.filter(name="planted").exists()


def test_the_organization_filter_narrows_a_changelist(client, world):
    root = User.objects.create_superuser("root", password="x")
    make_group(world.acme, "acme-shared")
    make_group(world.globex, "globex-shared")
    client.force_login(root)
    html = client.get(f"{GROUPS}?organization__slug__exact=acme").content.decode()
    assert "acme-shared" in html
    assert "globex-shared" not in html
    html = client.get("/admin/orgenv/project/?organization__slug__exact=globex").content.decode()
    assert "globex/app" in html or ">app<" in html
    assert ">web<" not in html


def test_the_organization_filter_offers_only_administered_organizations(client, world):
    client.force_login(world.alice)
    html = client.get(GROUPS).content.decode()
    assert "?organization__slug__exact=acme" in html
    assert "?organization__slug__exact=globex" not in html


def test_an_org_admin_edits_their_organization_but_cannot_create_or_delete_one(client, world):
    client.force_login(world.alice)
    assert client.get("/admin/orgenv/organization/add/").status_code == 403
    assert client.get(f"/admin/orgenv/organization/{world.acme.pk}/delete/").status_code == 403
    assert client.get(f"/admin/orgenv/organization/{world.acme.pk}/change/").status_code == 200
    assert client.get(f"/admin/orgenv/organization/{world.globex.pk}/change/").status_code == 302


def test_a_superuser_adds_a_member_on_the_organization_page(client, world):
    """Operators attach users directly; an org admin invites instead (tests/people)."""
    erin = User.objects.create_user("erin", password="x")
    root = User.objects.create_superuser("root", password="root-password")
    memberships = list(world.acme.memberships.order_by("pk"))
    data = {
        "slug": "acme",
        "name": "Acme ML",
        "memberships-TOTAL_FORMS": str(len(memberships) + 1),
        "memberships-INITIAL_FORMS": str(len(memberships)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, m in enumerate(memberships):
        data |= {
            f"memberships-{i}-id": str(m.pk),
            f"memberships-{i}-organization": str(world.acme.pk),
            f"memberships-{i}-user": m.user.username,
            f"memberships-{i}-role": m.role,
        }
    n = len(memberships)
    data |= {f"memberships-{n}-user": "erin", f"memberships-{n}-role": "member"}
    client.force_login(root)
    response = client.post(f"/admin/orgenv/organization/{world.acme.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.filter(user=erin, organization=world.acme, role="member").exists()
    assert world.acme.memberships.count() == n + 1  # the existing rows were kept as they were

    # An unknown username is a form error, and nothing is saved.
    data |= {f"memberships-{n + 1}-user": "nobody", f"memberships-{n + 1}-role": "member"}
    data["memberships-TOTAL_FORMS"] = str(n + 2)
    data["memberships-INITIAL_FORMS"] = str(n)
    response = client.post(f"/admin/orgenv/organization/{world.acme.pk}/change/", data)
    assert response.status_code == 200
    assert "There is no user named nobody" in response.content.decode()


def test_the_organization_page_does_not_list_other_organizations_users(client, world):
    client.force_login(world.alice)
    html = client.get(f"/admin/orgenv/organization/{world.acme.pk}/change/").content.decode()
    assert "bob" in html
    assert "charlie" not in html


def test_team_member_choices_are_the_organizations_members(client, world):
    team = Team.objects.create(organization=world.acme, slug="ml")
    client.force_login(world.alice)
    html = client.get(f"/admin/orgenv/team/{team.pk}/change/").content.decode()
    assert f'value="{world.bob.pk}"' in html
    assert f'value="{world.charlie.pk}"' not in html


def test_a_tampered_post_adding_an_outsider_to_a_project_is_refused(client, world):
    client.force_login(world.alice)
    data = {
        "slug": "web",
        "name": "Web",
        "environment": "production",
        "members": [str(world.charlie.pk)],
        "variables-TOTAL_FORMS": "0",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    response = client.post(f"/admin/orgenv/project/{world.web.pk}/change/", data)
    assert response.status_code == 200
    assert list(Project.objects.get(pk=world.web.pk).members.all()) == [world.bob]


def test_the_manage_link_to_the_index_carries_the_organization_to_every_changelist(client, world):
    # An admin of several organizations gets the index (one of one lands in the workspace).
    Membership.objects.create(user=world.alice, organization=world.globex, role="admin")
    client.force_login(world.alice)
    html = client.get("/admin/?organization=acme").content.decode()
    assert 'href="/admin/orgenv/variablegroup/?organization__slug__exact=acme"' in html
    assert 'href="/admin/orgenv/organization/?organization__slug__exact=acme"' in html
    for model in (
        "variablegroup",
        "variable",
        "project",
        "projectvariable",
        "team",
        "projecttoken",
        "organization",
    ):
        response = client.get(f"/admin/orgenv/{model}/?organization__slug__exact=acme")
        assert response.status_code == 200, model


def test_alice_deletes_an_acme_group_with_its_variables(client, world):
    group = make_group(world.acme, "doomed", secrets={"KEY": "never-listed-value"})
    client.force_login(world.alice)
    confirm = client.get(f"{GROUPS}{group.pk}/delete/")
    assert confirm.status_code == 200
    assert "never-listed-value" not in confirm.content.decode()
    # Confirmed as shown (the generation the page carries: orgenv.admin.deleting).
    shown_at = confirm.context["deletion"].generation
    response = client.post(
        f"{GROUPS}{group.pk}/delete/", {"post": "yes", "_impact_generation": shown_at}
    )
    assert response.status_code == 302
    assert not VariableGroup.objects.filter(pk=group.pk).exists()


def test_the_variable_add_page_offers_only_own_groups(client, world):
    mine = make_group(world.acme, "acme-shared")
    theirs = make_group(world.globex, "globex-shared")
    client.force_login(world.alice)
    html = client.get("/admin/orgenv/variable/add/").content.decode()
    assert f'value="{mine.pk}"' in html
    assert f'value="{theirs.pk}"' not in html
