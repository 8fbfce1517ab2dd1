"""The group page: the write-only secret widget, the environment guard, the read-only panels."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgenv.admin.panels import group_panels
from orgenv.models import Project, ProjectVariable, Team, Variable, VariableGroup
from tests.conftest import confirmed, make_group

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Value-7f1c"


def change_url(group: VariableGroup) -> str:
    return f"/admin/orgenv/variablegroup/{group.pk}/change/"


def group_data(group: VariableGroup, variables: list[dict], **fields: object) -> dict:
    """The change page's POST as a browser sends it: the group's fields, then one inline row
    per variable (existing rows carry their id; a row's value is what was typed)."""
    data: dict[str, object] = {
        "name": group.name,
        "description": group.description,
        "environment": group.environment,
        "priority": str(group.priority),
        "access": group.access,
        "projects": [str(p.pk) for p in group.projects.all()],
        "teams": [str(t.pk) for t in group.teams.all()],
        "_save": "Save",
    }
    data.update(fields)
    initial = sum(1 for v in variables if "id" in v)
    data |= {
        "variables-TOTAL_FORMS": str(len(variables)),
        "variables-INITIAL_FORMS": str(initial),
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(variables):
        data[f"variables-{i}-group"] = str(group.pk)
        for key, value in row.items():
            if key == "is_secret":
                if value:
                    data[f"variables-{i}-is_secret"] = "on"
            else:
                data[f"variables-{i}-{key}"] = str(value)
    return data


def post_group(client, group: VariableGroup, variables: list[dict], **fields: object):
    """POST the change page (group_data), then Confirm on the impact preview if the save
    shows one."""
    response = client.post(change_url(group), group_data(group, variables, **fields))
    return confirmed(client, response)


@pytest.fixture
def secret_group(world):
    return make_group(world.acme, "db", secrets={"DB_PASSWORD": SECRET}, projects=[world.web])


def the_secret(group: VariableGroup) -> Variable:
    return group.variables.get(name="DB_PASSWORD")


def test_the_change_page_never_renders_a_secret_value(client, world, secret_group):
    client.force_login(world.alice)
    response = client.get(change_url(secret_group))
    assert response.status_code == 200
    html = response.content.decode()
    assert "DB_PASSWORD" in html
    assert SECRET not in html
    assert "never shown" in html  # the placeholder says why the field is empty


def test_leaving_a_secret_blank_keeps_the_stored_value(client, world, secret_group):
    variable = the_secret(secret_group)
    client.force_login(world.alice)
    response = post_group(
        client,
        secret_group,
        [{"id": variable.pk, "name": "DB_PASSWORD", "value": "", "is_secret": True}],
        description="rotated nothing",
    )
    assert response.status_code == 302
    variable.refresh_from_db()
    assert variable.value == SECRET
    # Nothing changed on the variable, so no new history row was written for it.
    assert variable.history.count() == 1


def test_typing_a_new_secret_replaces_it(client, world, secret_group):
    variable = the_secret(secret_group)
    client.force_login(world.alice)
    response = post_group(
        client,
        secret_group,
        [{"id": variable.pk, "name": "DB_PASSWORD", "value": "rotated-2", "is_secret": True}],
    )
    assert response.status_code == 302
    variable.refresh_from_db()
    assert (variable.value, variable.is_secret) == ("rotated-2", True)


def test_unmarking_a_secret_without_typing_the_value_is_refused(client, world, secret_group):
    variable = the_secret(secret_group)
    client.force_login(world.alice)
    response = post_group(
        client,
        secret_group,
        [{"id": variable.pk, "name": "DB_PASSWORD", "value": "", "is_secret": False}],
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Type the value again to make this variable public" in html
    assert SECRET not in html
    variable.refresh_from_db()
    assert (variable.value, variable.is_secret) == (SECRET, True)


def test_unmarking_a_secret_with_the_value_typed_makes_it_public(client, world, secret_group):
    variable = the_secret(secret_group)
    client.force_login(world.alice)
    response = post_group(
        client,
        secret_group,
        [{"id": variable.pk, "name": "DB_PASSWORD", "value": "now-public", "is_secret": False}],
    )
    assert response.status_code == 302
    variable.refresh_from_db()
    assert (variable.value, variable.is_secret) == ("now-public", False)


def test_public_values_are_shown_and_keep_their_lines(client, world):
    group = make_group(world.acme, "plain", variables={"GREETING": "hello"})
    variable = group.variables.get()
    client.force_login(world.alice)
    assert "hello" in client.get(change_url(group)).content.decode()
    # Browsers post a textarea with CRLF line endings.
    response = post_group(
        client, group, [{"id": variable.pk, "name": "GREETING", "value": "line 1\r\nline 2\r\n"}]
    )
    assert response.status_code == 302
    variable.refresh_from_db()
    assert variable.value == "line 1\nline 2\n"


def test_a_secret_typed_into_a_form_with_errors_is_not_echoed_back(client, world):
    group = make_group(world.acme, "fresh")
    client.force_login(world.alice)
    response = post_group(
        client, group, [{"name": "9BAD", "value": "typed-secret-xyz", "is_secret": True}]
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "not a valid variable name" in html
    assert "typed-secret-xyz" not in html
    assert not group.variables.exists()


def test_a_new_secret_is_saved_and_the_message_does_not_contain_it(client, world):
    group = make_group(world.acme, "fresh")
    client.force_login(world.alice)
    response = post_group(
        client, group, [{"name": "TOKEN", "value": "brand-new", "is_secret": True}]
    )
    assert response.status_code == 302
    assert group.variables.get().value == "brand-new"
    followed = client.get(response["Location"]).content.decode()
    assert "was changed successfully" in followed
    assert "brand-new" not in followed


def test_the_environment_guard_error_names_both_labels(client, world):
    staging = Project.objects.create(
        organization=world.acme, slug="stage", name="Stage", environment="staging"
    )
    group = make_group(world.acme, "staging-creds", environment="staging", projects=[staging])
    client.force_login(world.alice)
    response = post_group(client, group, [], projects=[str(staging.pk), str(world.web.pk)])
    assert response.status_code == 200
    html = response.content.decode()
    assert "Project &#x27;web&#x27; is labelled &#x27;production&#x27;" in html
    assert "group &#x27;staging-creds&#x27; is labelled &#x27;staging&#x27;" in html
    assert list(group.projects.all()) == [staging]


def test_the_guard_applies_on_the_add_page_too(client, world):
    client.force_login(world.alice)
    data = {
        "organization": str(world.acme.pk),
        "name": "dev-creds",
        "environment": "development",
        "priority": "0",
        "access": "selected",
        "projects": [str(world.web.pk)],
        "variables-TOTAL_FORMS": "0",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    response = client.post("/admin/orgenv/variablegroup/add/", data)
    assert response.status_code == 200
    assert "labelled &#x27;development&#x27;" in response.content.decode()
    assert not VariableGroup.objects.filter(name="dev-creds").exists()


def test_relabelling_a_group_and_regranting_in_one_save_is_accepted(client, world):
    staging = Project.objects.create(
        organization=world.acme, slug="stage", name="Stage", environment="staging"
    )
    group = make_group(world.acme, "creds", environment="production", projects=[world.web])
    client.force_login(world.alice)
    response = post_group(client, group, [], environment="staging", projects=[str(staging.pk)])
    assert response.status_code == 302, response.content.decode()[:3000]
    group.refresh_from_db()
    assert group.environment == "staging"
    assert list(group.projects.all()) == [staging]


def test_the_reach_panel_shows_how_and_what_the_guard_skips(client, world):
    team = Team.objects.create(organization=world.acme, slug="ml")
    staging = Project.objects.create(
        organization=world.acme, slug="stage", name="Stage", environment="staging"
    )
    staging.teams.add(team)
    group = make_group(world.acme, "prod", environment="production", access="all")
    panels = group_panels(group)
    assert [(r.slug, r.reach.how) for r in panels.reached] == [("web", "all")]
    assert [r.slug for r in panels.skipped] == ["stage"]

    teamed = make_group(world.acme, "via-team", teams=[team])
    assert [(r.slug, r.reach.how) for r in group_panels(teamed).reached] == [("stage", "team")]

    client.force_login(world.alice)
    html = client.get(change_url(group)).content.decode()
    assert "Projects this group reaches" in html
    assert "Skipped by the environment guard" in html
    assert "environment guard: group is &#x27;production&#x27;" in html


def test_the_conflict_panel_lists_same_priority_groups_reaching_the_same_project(client, world):
    other = Project.objects.create(organization=world.acme, slug="other", name="Other")
    alpha = make_group(world.acme, "alpha", variables={"REGION": "eu"}, projects=[world.web])
    make_group(world.acme, "beta", variables={"REGION": "us"}, access="all")
    make_group(world.acme, "gamma", variables={"REGION": "ap"}, priority=5, access="all")
    make_group(world.acme, "delta", variables={"REGION": "x"}, projects=[other])
    conflicts = group_panels(alpha).conflicts
    assert [(c.project, c.name, c.other_group, c.winner) for c in conflicts] == [
        ("web", "REGION", "beta", "alpha")
    ]
    ProjectVariable.objects.create(project=world.web, name="REGION", value="local")
    assert group_panels(alpha).conflicts[0].settled_by_project

    client.force_login(world.alice)
    html = client.get(change_url(alpha)).content.decode()
    assert "Conflicts with other groups" in html
    assert 'data-label="Other group">beta</td>' in html
    assert ">us<" not in html  # values of other groups are not shown


def test_the_group_panels_take_a_constant_number_of_queries(world):
    def count(n: int) -> int:
        VariableGroup.objects.all().delete()
        mine = make_group(world.acme, "mine", variables={"X": "1"}, access="all")
        for i in range(n):
            project = Project.objects.create(organization=world.acme, slug=f"p{n}-{i}", name="p")
            make_group(world.acme, f"rival{i}", variables={"X": "2"}, projects=[project])
        with CaptureQueriesContext(connection) as queries:
            group_panels(mine)
        return len(queries)

    # names of same-priority groups; projects, groups, group→project, group→team and
    # project→team (orgenv.selectors.reach); overrides
    assert count(1) == count(12) == 7


def test_the_group_page_costs_the_same_queries_for_few_or_many_projects(client, world):
    client.force_login(world.alice)

    def page_queries(n: int) -> int:
        projects = [
            Project.objects.create(organization=world.acme, slug=f"n{n}-{i}", name="p")
            for i in range(n)
        ]
        teams = [Team.objects.create(organization=world.acme, slug=f"n{n}-{i}") for i in range(n)]
        group = make_group(
            world.acme,
            f"g{n}",
            variables={f"V{i}": "x" for i in range(n)},
            secrets={f"S{i}": "y" for i in range(n)},
            projects=projects,
            teams=teams,
        )
        for i in range(n):
            make_group(world.acme, f"rival{n}-{i}", variables={"V0": "z"}, projects=projects)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(change_url(group)).status_code == 200
        return len(queries)

    page_queries(1)  # warm the per-process caches (content types, sessions)
    assert page_queries(3) == page_queries(12)


def test_a_new_secret_without_a_value_is_refused(client, world):
    group = make_group(world.acme, "fresh")
    client.force_login(world.alice)
    response = post_group(client, group, [{"name": "TOKEN", "value": "", "is_secret": True}])
    assert response.status_code == 200
    assert "Type a value for this secret" in response.content.decode()
    assert not group.variables.exists()


def test_each_variable_row_has_a_key_toggle_named_secret(client, world, secret_group):
    client.force_login(world.alice)
    html = client.get(change_url(secret_group)).content.decode()
    assert 'class="secret-toggle"' in html and 'class="key-icon"' in html
    assert 'name="variables-0-is_secret" aria-label="Secret" class="secret-input"' in html


def test_the_project_picker_disables_what_the_guard_refuses_with_the_reason(client, world):
    Project.objects.create(organization=world.acme, slug="jobs", name="Jobs", environment="staging")
    group = make_group(world.acme, "prod", environment="production")
    client.force_login(world.alice)
    html = client.get(change_url(group)).content.decode()
    assert "labelled staging, this group is production" in html
    assert 'data-environment="staging" disabled>' in html
    assert 'data-environment="production">' in html  # web may be chosen
    assert 'data-guard-source="id_environment" data-guard-side="group"' in html


def test_variables_come_before_access_on_the_group_page(client, world, secret_group):
    client.force_login(world.alice)
    html = client.get(change_url(secret_group)).content.decode()
    assert html.index('id="id_name"') < html.index('id="variables-heading"')
    assert html.index('id="variables-heading"') < html.index('id="id_projects"')
