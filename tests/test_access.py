"""orgenv.access, the one choke point: every persona against every function, as one table.

acme has projects web (bob belongs directly), ml (through team ml) and lab (nobody); globex
has app. An organization admin is an active staff user with an admin membership; the same
membership without staff status grants nothing beyond a member's rights.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from orgenv import access
from orgenv.models import (
    AuditEvent,
    Membership,
    Organization,
    Project,
    ProjectToken,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
)
from tests.conftest import make_group

PERSONAS = (
    "superuser",
    "org_admin",
    "staff_member",
    "admin_without_staff",
    "team_member",
    "direct_member",
    "outsider",
    "inactive",
)


@pytest.fixture
def people(db) -> dict[str, User]:
    acme = Organization.objects.create(slug="acme", name="Acme")
    globex = Organization.objects.create(slug="globex", name="Globex")
    web = Project.objects.create(organization=acme, slug="web", name="Web")
    ml = Project.objects.create(organization=acme, slug="ml", name="ML")
    Project.objects.create(organization=acme, slug="lab", name="Lab")
    Project.objects.create(organization=globex, slug="app", name="App")
    make_group(acme, "acme-shared", access="all", variables={"A": "1"})
    make_group(globex, "globex-shared", access="all", variables={"G": "1"})

    def user(name: str, *, role: str | None = None, org: Organization = acme, **flags) -> User:
        person = User.objects.create_user(name, password=f"{name}-password", **flags)
        if role:
            Membership.objects.create(user=person, organization=org, role=role)
        return person

    users = {
        "superuser": user("root", is_staff=True, is_superuser=True),
        "org_admin": user("alice", role="admin", is_staff=True),
        "staff_member": user("stan", role="member", is_staff=True),
        "admin_without_staff": user("nora", role="admin"),
        "team_member": user("tess", role="member"),
        "direct_member": user("bob", role="member"),
        "outsider": user("charlie", role="admin", org=globex, is_staff=True),
        "inactive": user("ivan", role="admin", is_staff=True, is_active=False),
    }
    web.members.add(users["direct_member"])
    team = Team.objects.create(organization=acme, slug="ml")
    team.members.add(users["team_member"])
    ml.teams.add(team)
    return users


# persona: (is_org_admin(acme), administered org slugs, may_administer([acme]),
#           may_administer([a new org]), readable project slugs,
#           project_access for acme/web, acme/ml, acme/lab (None or administers),
#           organizations of the variables restrict() lets through)
EXPECTED = {
    "superuser": (
        True,
        ["acme", "globex"],
        True,
        True,
        ["acme/lab", "acme/ml", "acme/web", "globex/app"],
        (True, True, True),
        ["acme", "globex"],
    ),
    "org_admin": (
        True,
        ["acme"],
        True,
        False,
        ["acme/lab", "acme/ml", "acme/web"],
        (True, True, True),
        ["acme"],
    ),
    "staff_member": (False, [], False, False, [], (None, None, None), []),
    "admin_without_staff": (False, [], False, False, [], (None, None, None), []),
    "team_member": (False, [], False, False, ["acme/ml"], (None, False, None), []),
    "direct_member": (False, [], False, False, ["acme/web"], (False, None, None), []),
    "outsider": (False, ["globex"], False, False, ["globex/app"], (None, None, None), ["globex"]),
    "inactive": (False, [], False, False, [], (None, None, None), []),
}


def observe(user: User) -> tuple:
    acme = Organization.objects.get(slug="acme")

    def access_to(slug: str) -> bool | None:
        found = access.project_access(user, organization="acme", project=slug)
        return None if found is None else found.administers

    return (
        access.is_org_admin(user, acme),
        sorted(access.administered_organizations(user).values_list("slug", flat=True)),
        access.may_administer(user, ["acme"]),
        access.may_administer(user, ["brand-new"]),
        sorted(f"{p.organization.slug}/{p.slug}" for p in access.projects_for(user)),
        tuple(access_to(slug) for slug in ("web", "ml", "lab")),
        sorted(
            {
                v.group.organization.slug
                for v in access.restrict(Variable.objects.all(), user).select_related(
                    "group__organization"
                )
            }
        ),
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_persona_gets_exactly_its_rights_from_every_function(people, persona):
    user = people[persona]
    assert observe(user) == EXPECTED[persona]
    # The id-based forms agree with the queryset ones.
    administered = set(access.administered_organizations(user).values_list("pk", flat=True))
    assert access.admin_organization_ids(user) == administered
    assert (
        access.is_org_admin(user, Organization.objects.get(slug="acme").pk)
        is (EXPECTED[persona][0])
    )


def test_an_anonymous_user_gets_nothing_and_no_error(db):
    from django.contrib.auth.models import AnonymousUser

    anonymous = AnonymousUser()
    Organization.objects.create(slug="acme", name="Acme")
    assert access.admin_organization_ids(anonymous) == set()
    assert not access.projects_for(anonymous).exists()
    assert access.project_access(anonymous, organization="acme", project="web") is None
    assert access.may_administer(None, ["acme"]) is False


def test_may_administer_needs_every_organization_named(people):
    Membership.objects.create(
        user=people["org_admin"], organization=Organization.objects.get(slug="globex")
    )  # a member of globex, not its admin
    assert access.may_administer(people["org_admin"], ["acme"])
    assert not access.may_administer(people["org_admin"], ["acme", "globex"])
    assert access.may_administer(people["outsider"], ["globex", "globex"])


def test_project_access_reads_the_project_and_the_admin_flag_in_one_query(
    people, django_assert_num_queries
):
    # One SELECT: the project, its organization, and an EXISTS on the admin membership.
    with django_assert_num_queries(1):
        found = access.project_access(people["org_admin"], organization="acme", project="web")
    assert (found.project.slug, found.project.organization.slug, found.administers) == (
        "web",
        "acme",
        True,
    )


def test_organization_of_follows_each_models_path(people):
    acme = Organization.objects.get(slug="acme")
    web = Project.objects.get(slug="web")
    group = VariableGroup.objects.get(name="acme-shared")
    team = Team.objects.get(slug="ml")
    objects = [
        acme,
        Membership.objects.filter(organization=acme).first(),
        team,
        web,
        group,
        group.variables.first(),
        ProjectVariable.objects.create(project=web, name="P", value="p"),
        ProjectToken.objects.create(project=web, name="ci", prefix="abc12345", digest="d" * 64),
        AuditEvent.objects.create(kind=AuditEvent.Kind.LOGIN, organization=acme),
    ]
    assert [access.organization_of(obj) for obj in objects] == [acme.pk] * len(objects)
    assert access.organization_of(people["org_admin"]) is None  # outside the tenancy
    assert access.organization_of(Variable(name="X", value="x")) is None  # no group yet


def test_an_admin_membership_without_staff_status_opens_no_admin_door(client, people):
    """Pages, member API and audit agree with the table: nora is only a member."""
    nora = people["admin_without_staff"]
    Project.objects.get(slug="web").members.add(nora)
    make_group(
        Organization.objects.get(slug="acme"), "vault", secrets={"TOKEN": "nora-must-not-see"}
    )
    VariableGroup.objects.filter(name="vault").update(access="all")
    client.force_login(nora)

    page = client.get("/orgs/acme/projects/web/environment/")
    assert page.status_code == 200
    assert page.context["is_admin"] is False
    api = client.get("/api/v1/projects/acme/web/environment")
    assert api.json()["variables"]["TOKEN"] is None
    reveal = client.post(
        "/api/v1/projects/acme/web/secrets/TOKEN/reveal",
        {"reason": "curious"},
        content_type="application/json",
    )
    assert reveal.status_code == 403 and "nora-must-not-see" not in reveal.content.decode()
    assert client.get("/orgs/acme/audit/").status_code == 404
    assert client.get("/orgs/acme/grants/").status_code == 404
    assert client.get("/").context["managed_organizations"] == []
