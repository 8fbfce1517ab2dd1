"""export_config: the current state as an apply_config file that, applied back, plans nothing."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgenv.models import Organization, Project, ProjectVariable, Team, Variable, VariableGroup


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def assert_plans_nothing(tmp_path, exported: str, *options: str) -> None:
    path = tmp_path / "export.yaml"
    path.write_text(exported)
    output = run("apply_config", str(path), "--dry-run", *options)
    for org in yaml.safe_load(exported)["organizations"] or []:
        assert f"{org['slug']}: nothing to change." in output
        assert f"{org['slug']}: no project's environment changes." in output


@pytest.fixture
def demo(db):
    call_command("demo", stdout=io.StringIO())


def test_the_demo_exports_and_applies_back_to_no_change(demo, tmp_path):
    exported = run("export_config")
    assert_plans_nothing(tmp_path, exported)
    assert_plans_nothing(tmp_path, exported, "--prune")
    assert run("export_config", "acme") == exported  # stable, byte for byte


def test_secrets_are_exported_without_their_values(demo):
    exported = run("export_config", "acme")
    for secret in Variable.objects.filter(is_secret=True):
        assert secret.value not in exported
    assert '- {name: "PRODUCTION_SECRET", secret: true}' in exported
    assert '- {name: "PRODUCTION_ENVVAR", value: "production"}' in exported


def test_each_group_has_a_comment_naming_its_environment(demo):
    exported = run("export_config", "acme")
    assert (
        "# production-db: environment production — reaches only projects labelled production\n"
        '      - name: "production-db"' in exported
    )
    assert "# shared-infrastructure: no environment — reaches projects of any label" in exported


def test_an_unknown_organization_is_refused(demo):
    with pytest.raises(CommandError, match="There is no organization 'nope'"):
        run("export_config", "acme", "nope")


def test_a_secret_left_out_keeps_its_value_and_a_new_one_needs_a_value(demo, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "organizations:\n  - slug: acme\n    groups:\n      - name: production\n"
        "        variables:\n          - {name: PRODUCTION_SECRET, secret: true}\n"
        "          - {name: BRAND_NEW, secret: true}\n"
    )
    with pytest.raises(CommandError) as caught:
        run("apply_config", str(path))
    assert f"{path}:7: organizations[0].groups[0].variables[1]" in str(caught.value)
    assert "a value is required for a new variable" in str(caught.value)
    path.write_text(path.read_text().replace("          - {name: BRAND_NEW, secret: true}\n", ""))
    run("apply_config", str(path), "--prune")
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "hidden"
    assert sorted(
        Variable.objects.filter(group__name="production").values_list("name", flat=True)
    ) == ["PRODUCTION_SECRET"]


TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
SLUG = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@st.composite
def organizations(draw):
    projects = draw(st.lists(SLUG, unique=True, min_size=1, max_size=3))
    environments = {p: draw(st.sampled_from(["", "production", "staging"])) for p in projects}
    teams = draw(st.lists(SLUG, unique=True, max_size=2))
    groups = []
    for name in draw(st.lists(SLUG, unique=True, max_size=3)):
        env = draw(st.sampled_from(["", "production", "staging"]))
        eligible = [p for p in projects if not env or environments[p] == env]
        groups.append(
            dict(
                name=name,
                environment=env,
                priority=draw(st.integers(-3, 3)),
                access=draw(st.sampled_from(["all", "selected"])),
                description=draw(TEXT),
                projects=draw(st.lists(st.sampled_from(eligible), unique=True)) if eligible else [],
                teams=draw(st.lists(st.sampled_from(teams), unique=True)) if teams else [],
                variables=draw(st.dictionaries(NAME, st.tuples(TEXT, st.booleans()), max_size=3)),
            )
        )
    project_variables = {
        p: draw(st.dictionaries(NAME, st.tuples(TEXT, st.booleans()), max_size=2)) for p in projects
    }
    return environments, teams, groups, project_variables, draw(TEXT.filter(lambda t: t.strip()))


class Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=organizations())
def test_a_generated_organization_exports_and_applies_back_to_no_change(tmp_path, data):
    environments, teams, groups, project_variables, org_name = data
    try:
        with transaction.atomic():
            org = Organization.objects.create(slug="gen", name=org_name[:200])
            team_rows = {t: Team.objects.create(organization=org, slug=t) for t in teams}
            projects = {}
            for slug, env in environments.items():
                projects[slug] = Project.objects.create(
                    organization=org, slug=slug, name=slug.upper(), environment=env
                )
                if team_rows:
                    projects[slug].teams.add(*team_rows.values())
                for name, (value, secret) in project_variables[slug].items():
                    ProjectVariable.objects.create(
                        project=projects[slug], name=name, value=value, is_secret=secret
                    )
            for g in groups:
                group = VariableGroup.objects.create(
                    organization=org,
                    name=g["name"],
                    environment=g["environment"],
                    priority=g["priority"],
                    access=g["access"],
                    description=g["description"],
                )
                group.projects.add(*[projects[p] for p in g["projects"]])
                group.teams.add(*[team_rows[t] for t in g["teams"]])
                for name, (value, secret) in g["variables"].items():
                    Variable.objects.create(group=group, name=name, value=value, is_secret=secret)
            exported = run("export_config", "gen")
            assert_plans_nothing(tmp_path, exported, "--prune")
            raise Rollback
    except Rollback:
        pass
