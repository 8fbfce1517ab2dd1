"""orgenv.configuration: loading with line numbers, whole-file validation, atomic apply."""

from __future__ import annotations

import textwrap

import pytest

from orgenv import configuration
from orgenv.configuration import ConfigInvalid
from orgenv.models import AuditEvent, Project, Team, Variable, VariableGroup


def config(text: str, **kwargs) -> configuration.Config:
    return configuration.validate(
        configuration.load(textwrap.dedent(text), "c.yaml"), "c.yaml", **kwargs
    )


def errors_of(text: str, **kwargs) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        config(text, **kwargs)
    return [str(e) for e in caught.value.errors]


def test_the_loader_remembers_the_line_of_every_mapping_key_and_list_item():
    data = configuration.load("a: 1\nlist:\n  - x\n  - {k: v}\n")
    assert data.line == 1
    assert data.key_lines == {"a": 1, "list": 2}
    assert data["list"].item_lines == [3, 4]
    assert data["list"][1].line == 4


def test_a_value_is_the_text_as_written_not_what_yaml_would_make_of_it():
    data = configuration.load(
        "vs:\n- {value: 10}\n- {value: yes}\n- {value: 0755}\n- {value: 1e3}\n- {value: 'q'}\n"
    )
    assert [v["value"] for v in data["vs"]] == ["10", "yes", "0755", "1e3", "q"]


def test_invalid_yaml_names_the_line():
    with pytest.raises(ConfigInvalid) as caught:
        configuration.load("organizations:\n  - slug: acme\n   bad: indent\n", "c.yaml")
    [error] = caught.value.errors
    assert error.line == 3 and "invalid YAML" in error.message


def test_validation_reports_every_error_sorted_by_line(world):
    errors = errors_of(
        """\
        organizations:
          - slug: acme
            groups:
              - name: g
                variables:
                  - {name: GOOD, value: x}
                  - {name: BAD-NAME, value: x}
                  - {name: ALSO_GOOD, value: x}
                  - {name: 9LIVES, value: x}
        """
    )
    assert errors == [
        "c.yaml:7: organizations[0].groups[0].variables[1].name: 'BAD-NAME' is not a valid "
        "variable name: use letters, digits and underscores, not starting with a digit.",
        "c.yaml:9: organizations[0].groups[0].variables[3].name: '9LIVES' is not a valid "
        "variable name: use letters, digits and underscores, not starting with a digit.",
    ]


# Each case replaces the {} line of a valid file; the error must name that line (6).
TEMPLATE = """\
organizations:
  - slug: acme
    projects:
      - {{slug: jobs, environment: staging}}
    groups:
{}
"""

BAD_LINES = [
    ("an unknown key", "      - {name: g, colour: red}", "unknown key 'colour'"),
    ("a missing group name", "      - {description: x}", "'name' is required"),
    ("a group name that is not a slug", "      - {name: 'a b'}", "not a valid slug"),
    ("a priority that is not a number", "      - {name: g, priority: high}", "whole number"),
    ("a priority that is a boolean", "      - {name: g, priority: true}", "whole number"),
    ("an unknown access", "      - {name: g, access: some}", "use all or selected"),
    (
        "a bad environment label",
        "      - {name: g, environment: Prod!}",
        "not a valid environment label",
    ),
    (
        "a description that is a list",
        "      - {name: g, description: [a]}",
        "expected text, found a list",
    ),
    ("projects that are not a list", "      - {name: g, projects: web}", "expected a list"),
    (
        "a project that does not exist",
        "      - {name: g, projects: [nope]}",
        "there is no project 'nope' in organization 'acme'",
    ),
    (
        "another organization's project",
        "      - {name: g, projects: [app]}",
        "there is no project 'app' in organization 'acme'",
    ),
    ("a team that does not exist", "      - {name: g, teams: [nope]}", "there is no team 'nope'"),
    (
        "a project listed twice",
        "      - {name: g, projects: [web, web]}",
        "'web' is listed twice (first on line 6)",
    ),
    (
        "the environment guard",
        "      - {name: g, environment: production, projects: [jobs]}",
        "Project 'jobs' is labelled 'staging' but group 'g' is labelled 'production'",
    ),
    (
        "variables that are a mapping",
        "      - {name: g, variables: {A: b}}",
        "expected a list, found a mapping",
    ),
    (
        "a variable without a value",
        "      - {name: g, variables: [{name: A}]}",
        "a value is required for a new variable",
    ),
    (
        "a variable with both values",
        "      - {name: g, variables: [{name: A, value: x, value_from_env: HOME}]}",
        "not both",
    ),
    ("a reserved name", "      - {name: g, variables: [{name: ORGENV_X, value: x}]}", "reserved"),
    (
        "a name defined twice",
        "      - {name: g, variables: [{name: A, value: x}, {name: A, value: y}]}",
        "'A' is defined twice",
    ),
    (
        "a secret flag that is not a boolean",
        "      - {name: g, variables: [{name: A, value: x, secret: yes please}]}",
        "expected true or false",
    ),
    (
        "a value that is a list",
        "      - {name: g, variables: [{name: A, value: [x]}]}",
        "expected text, found a list",
    ),
    ("a value with a NUL", '      - {name: g, variables: [{name: A, value: "a\\0b"}]}', "NUL"),
    (
        "a missing value_from_env variable",
        "      - {name: g, variables: [{name: A, value_from_env: ORGENV_TEST_UNSET}]}",
        "the environment variable ORGENV_TEST_UNSET is not set",
    ),
    ("a repeated key", "      - {name: g, name: h}", "given twice"),
]


@pytest.mark.parametrize(("what", "line", "words"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_it_rejects(world, what, line, words):
    errors = errors_of(TEMPLATE.format(line), environ={})
    assert len(errors) == 1, errors
    assert errors[0].startswith("c.yaml:6: organizations[0].groups[0]")
    assert words in errors[0]


def test_a_group_listed_twice_names_the_first_line(world):
    errors = errors_of(TEMPLATE.format("      - {name: g}\n      - {name: g}"))
    assert errors == [
        "c.yaml:7: organizations[0].groups[1].name: group 'g' is listed twice (first on line 6)."
    ]


def test_members_must_be_existing_users_with_a_known_role(world):
    errors = errors_of(
        """\
        organizations:
          - slug: acme
            members: [{user: alice, role: admin}, {user: zed}, {user: bob, role: boss}]
            teams: [{slug: t, members: [ghost]}]
            projects: [{slug: p, members: [phantom]}]
        """
    )
    assert errors == [
        "c.yaml:3: organizations[0].members[1].user: there is no user named 'zed'; "
        "create the user first.",
        "c.yaml:3: organizations[0].members[2].role: 'boss' is not a role; use admin or member.",
        "c.yaml:4: organizations[0].teams[0].members: there is no user named 'ghost'; "
        "create the user first.",
        "c.yaml:5: organizations[0].projects[0].members: there is no user named 'phantom'; "
        "create the user first.",
    ]


def test_the_top_level_must_list_organizations():
    assert errors_of("groups: []\n") == [
        "c.yaml:1: 'organizations' is required.",
        "c.yaml:1: groups: unknown key 'groups'; expected one of: organizations.",
    ]
    assert errors_of("") == ["c.yaml:1: expected a mapping, found nothing."]


def test_a_relabelled_project_must_still_pass_the_guard_of_groups_the_file_does_not_list(world):
    VariableGroup.objects.create(
        organization=world.acme, name="prod", environment="production"
    ).projects.add(world.web)
    errors = errors_of(
        """\
        organizations:
          - slug: acme
            projects:
              - slug: web
                environment: staging
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith("c.yaml:5: ")
    assert "'staging'" in errors[0] and "'production'" in errors[0]


def test_an_existing_grant_that_a_relabelled_group_would_break_is_an_error_unless_pruned(world):
    group = VariableGroup.objects.create(organization=world.acme, name="g")
    group.projects.add(world.web)  # web is production
    text = """\
        organizations:
          - slug: acme
            projects: [{slug: jobs, environment: staging}]
            groups:
              - name: g
                environment: staging
                projects: [jobs]
        """
    [error] = errors_of(text)
    assert error.startswith("c.yaml:6: ") and "existing grant" in error
    config(text, prune=True)  # --prune drops the grant to web: valid


def test_apply_creates_everything_and_names_default_to_slugs(world):
    summary = configuration.apply(
        config(
            """\
            organizations:
              - slug: initech
                members: [{user: bob, role: admin}]
                projects:
                  - slug: tps
                    environment: production
                    members: [charlie]
                    variables: [{name: LOCAL, value: "1"}]
                teams: [{slug: ops, projects: [tps], members: [bob]}]
                groups:
                  - name: reports
                    environment: production
                    priority: 5
                    teams: [ops]
                    variables: [{name: TOKEN, value: t0k3n-value, secret: true}]
            """
        )
    )
    project = Project.objects.get(slug="tps")
    assert project.organization.name == "initech" and project.name == "tps"
    assert list(project.members.values_list("username", flat=True)) == ["charlie"]
    team = Team.objects.get(slug="ops")
    assert list(team.projects.all()) == [project]
    group = VariableGroup.objects.get(name="reports")
    assert (group.priority, group.environment, list(group.teams.all())) == (5, "production", [team])
    token = group.variables.get()
    assert (token.name, token.value, token.is_secret) == ("TOKEN", "t0k3n-value", True)
    assert project.organization.memberships.get().role == "admin"
    assert summary.as_detail("initech")["variables"] == {"created": 1}


def test_apply_twice_writes_no_history_the_second_time(world):
    text = """\
        organizations:
          - slug: acme
            groups:
              - name: g
                projects: [web]
                variables: [{name: A, value: "1"}, {name: S, value: s, secret: true}]
        """
    configuration.apply(config(text))
    before = (Variable.history.count(), VariableGroup.history.count(), AuditEvent.objects.count())
    summary = configuration.apply(config(text))
    assert not summary.changed
    assert (
        Variable.history.count(),
        VariableGroup.history.count(),
        AuditEvent.objects.count(),
    ) == before


def test_an_absent_secret_flag_keeps_an_existing_secret_secret(world):
    group = VariableGroup.objects.create(organization=world.acme, name="g")
    Variable.objects.create(group=group, name="S", value="old", is_secret=True)
    configuration.apply(
        config(
            "organizations: [{slug: acme, groups: [{name: g, variables: [{name: S, value: new}]}]}]"
        )
    )
    variable = group.variables.get()
    assert (variable.value, variable.is_secret) == ("new", True)


def test_value_from_env_reads_the_environment(world):
    text = (
        "organizations: [{slug: acme, groups: [{name: g, variables: "
        "[{name: DB_PASSWORD, value_from_env: DB_PW, secret: true}]}]}]"
    )
    configuration.apply(config(text, environ={"DB_PW": "from-the-environment"}))
    assert Variable.objects.get(name="DB_PASSWORD").value == "from-the-environment"


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "CACHE_URL", "EMAIL_URL"]
)
def test_value_from_env_refuses_the_servers_own_secrets(world, name):
    text = (
        "organizations: [{slug: acme, groups: [{name: g, variables: "
        f"[{{name: COPY, value_from_env: {name}}}]}}]}}]"
    )
    assert errors_of(text, environ={name: "the-servers-secret"}) == [
        f"c.yaml:1: organizations[0].groups[0].variables[0].value_from_env: {name} is a "
        "setting of the orgenv server itself (its secrets and the names in its .env); a file "
        "may not copy it into a variable."
    ]


def test_value_from_env_refuses_a_name_the_servers_env_file_defines(world, settings, tmp_path):
    from config.settings import _names_in

    dotenv = tmp_path / ".env"
    dotenv.write_text("SECRET_KEY=x\nexport SMTP_PASSWORD='p'\n# NOT_A_NAME=1\nDEBUG=false\n")
    assert _names_in(dotenv) == {"SECRET_KEY", "SMTP_PASSWORD", "DEBUG"}
    settings.ORGENV_SERVER_ENV_NAMES = settings.ORGENV_SERVER_ENV_NAMES | _names_in(dotenv)
    text = (
        "organizations: [{slug: acme, groups: [{name: g, variables: "
        "[{name: SMTP_PASSWORD, value_from_env: SMTP_PASSWORD}]}]}]"
    )
    [error] = errors_of(text, environ={"SMTP_PASSWORD": "p"})
    assert "SMTP_PASSWORD is a setting of the orgenv server itself" in error
    assert Variable.objects.count() == 0


def test_prune_removes_only_what_listed_groups_and_projects_no_longer_list(world):
    other = Project.objects.create(
        organization=world.acme, slug="other", name="other", environment="production"
    )
    team = Team.objects.create(organization=world.acme, slug="t")
    group = VariableGroup.objects.create(organization=world.acme, name="g")
    group.projects.add(world.web, other)
    group.teams.add(team)
    Variable.objects.create(group=group, name="KEEP", value="1")
    Variable.objects.create(group=group, name="DROP", value="2")
    untouched = VariableGroup.objects.create(organization=world.acme, name="unlisted")
    Variable.objects.create(group=untouched, name="STAYS", value="3")
    world.web.variables.create(name="PV_DROP", value="x")
    other.variables.create(name="PV_STAYS", value="y")
    text = """\
        organizations:
          - slug: acme
            projects: [{slug: web, variables: []}, {slug: other}]
            groups:
              - name: g
                projects: [web]
                variables: [{name: KEEP, value: "1"}]
        """
    configuration.apply(config(text))  # without --prune nothing is removed
    assert group.variables.count() == 2 and group.projects.count() == 2
    assert world.web.variables.count() == 1

    summary = configuration.apply(config(text, prune=True), prune=True)
    assert list(group.variables.values_list("name", flat=True)) == ["KEEP"]
    assert list(group.projects.all()) == [world.web]
    assert list(group.teams.all()) == [team]  # no `teams:` list: team grants are not managed
    assert not world.web.variables.exists()
    assert list(other.variables.values_list("name", flat=True)) == ["PV_STAYS"]  # no `variables:`
    assert untouched.variables.count() == 1  # a group absent from the file is never touched
    assert VariableGroup.objects.filter(name="unlisted").exists()
    detail = summary.as_detail("acme")
    assert detail["variables"] == {"deleted": 1}
    assert detail["grants"] == {"deleted": 1}
    assert detail["project variables"] == {"deleted": 1}


def test_apply_records_one_audit_event_with_counts_and_no_values(world):
    text = (
        "organizations: [{slug: acme, groups: [{name: g, variables: "
        "[{name: S, value: very-secret-thing, secret: true}]}]}]"
    )
    configuration.apply(config(text))
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CONFIG_APPLIED)
    assert event.organization == world.acme
    assert event.detail["counts"]["variables"] == {"created": 1}
    assert "very-secret-thing" not in str(event.detail)


def test_changing_a_group_field_updates_it_once_and_leaves_unlisted_fields_alone(world):
    group = VariableGroup.objects.create(
        organization=world.acme, name="g", description="kept", priority=1
    )
    rows = group.history.count()
    configuration.apply(config("organizations: [{slug: acme, groups: [{name: g, priority: 7}]}]"))
    group.refresh_from_db()
    assert (group.priority, group.description) == (7, "kept")
    assert group.history.count() == rows + 1


def test_a_bare_username_is_a_member(world):
    configuration.apply(config("organizations: [{slug: acme, members: [charlie]}]"))
    assert world.acme.memberships.get(user=world.charlie).role == "member"


def test_an_existing_role_is_kept_when_the_file_gives_none(world):
    configuration.apply(config("organizations: [{slug: acme, members: [{user: alice}]}]"))
    assert world.acme.memberships.get(user=world.alice).role == "admin"
