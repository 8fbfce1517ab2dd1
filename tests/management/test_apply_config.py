"""apply_config through the command line: a bad file changes nothing and names its line."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from orgenv import configuration, crypto
from orgenv.models import AuditEvent, Organization, Project, Variable, VariableGroup
from orgenv.tokens import token_issue
from tests.concurrency import between_statements

VALID = """\
organizations:
  - slug: acme
    projects:
      - {slug: api, name: API, environment: production}
    groups:
      - name: production
        environment: production
        projects: [web, api]
        variables:
          - {name: FIRST, value: one}
          - {name: SECOND, value: two, secret: true}
          - {name: THIRD, value: three}
"""


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apply_config", *args, stdout=out)
    return out.getvalue()


def snapshot() -> tuple:
    return (
        Project.objects.count(),
        VariableGroup.objects.count(),
        Variable.objects.count(),
        Variable.history.count(),
        VariableGroup.history.count(),
        AuditEvent.objects.count(),
    )


def test_a_bad_name_on_one_line_changes_nothing_and_the_error_names_that_line(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID.replace("{name: SECOND", "{name: BAD-NAME"))
    before = snapshot()
    with pytest.raises(CommandError) as caught:
        run(str(path))
    message = str(caught.value)
    assert f"{path}:11: organizations[0].groups[0].variables[1].name: 'BAD-NAME'" in message
    assert "nothing was changed" in message
    assert snapshot() == before
    assert not Project.objects.filter(slug="api").exists()  # valid entries were not applied


def test_a_valid_file_is_applied_and_summarised_without_values(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    output = run(str(path))
    assert "acme:" in output and "variables 3 created" in output and "projects 1 created" in output
    for value in ("one", "two", "three"):
        assert f" {value}" not in output.replace("1 created", "")
    group = VariableGroup.objects.get(name="production")
    assert sorted(group.projects.values_list("slug", flat=True)) == ["api", "web"]
    assert group.variables.get(name="SECOND").value == "two"

    again = run(str(path))
    assert "acme: nothing to change." in again


def test_value_from_env_comes_from_the_command_environment(world, tmp_path, monkeypatch):
    monkeypatch.setenv("ORGENV_TEST_DB_PASSWORD", "pw-from-env")
    path = tmp_path / "config.yaml"
    path.write_text(
        VALID.replace(
            "{name: THIRD, value: three}",
            "{name: DB_PASSWORD, value_from_env: ORGENV_TEST_DB_PASSWORD, secret: true}",
        )
    )
    run(str(path))
    assert Variable.objects.get(name="DB_PASSWORD").value == "pw-from-env"


def test_a_missing_value_from_env_variable_rejects_the_file(world, tmp_path, monkeypatch):
    monkeypatch.delenv("ORGENV_TEST_MISSING", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(VALID.replace("value: three", "value_from_env: ORGENV_TEST_MISSING"))
    with pytest.raises(CommandError) as caught:
        run(str(path))
    assert f"{path}:12:" in str(caught.value)
    assert "ORGENV_TEST_MISSING is not set" in str(caught.value)
    assert not VariableGroup.objects.exists()


def test_prune_deletes_variables_the_file_no_longer_lists(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    run(str(path))
    path.write_text(VALID.replace("          - {name: THIRD, value: three}\n", ""))
    run(str(path))
    assert VariableGroup.objects.get().variables.count() == 3
    output = run(str(path), "--prune")
    assert "variables 1 deleted" in output
    assert sorted(Variable.objects.values_list("name", flat=True)) == ["FIRST", "SECOND"]


def test_dry_run_writes_nothing_but_says_what_would_change(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    before = snapshot()
    crypto.plaintexts.clear()
    output = run(str(path), "--dry-run")
    assert "nothing was written" in output and "variables 3 created" in output
    assert snapshot() == before
    # Nor is any value it would have written kept decrypted in this process.
    kept = {plaintext for _, plaintext, _ in crypto.plaintexts._entries.values()}
    assert not kept & {"one", "two", "three"}


def test_changes_are_attributed_to_the_command_or_to_the_actor(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    run(str(path), "--actor", "alice")
    row = Variable.history.filter(name="FIRST").get()
    assert (row.history_actor, row.history_user) == ("alice", world.alice)
    assert AuditEvent.objects.get(kind=AuditEvent.Kind.CONFIG_APPLIED).actor == "alice"

    path.write_text(VALID.replace("value: one", "value: uno"))
    run(str(path))
    assert Variable.history.filter(name="FIRST").latest().history_actor == "system:apply_config"


def test_an_actor_who_does_not_administer_the_organization_is_refused(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    with pytest.raises(CommandError, match="charlie does not administer organization 'acme'"):
        run(str(path), "--actor", "charlie")
    assert not VariableGroup.objects.exists()


def test_an_unreadable_file_is_one_clear_line(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read the file: No such file or directory"):
        run(str(tmp_path / "missing.yaml"))


def test_a_group_and_the_project_it_selects_are_relabelled_together(world, tmp_path):
    # Valid as a whole: the environment guard judges the grants and labels the apply
    # leaves, not each write on its way.
    group = VariableGroup.objects.create(
        organization=world.acme, name="g", environment="production"
    )
    group.projects.add(world.web)
    path = tmp_path / "config.yaml"
    path.write_text(
        "organizations:\n"
        "  - slug: acme\n"
        "    projects: [{slug: new, environment: staging}, {slug: web, environment: staging}]\n"
        "    groups: [{name: g, environment: staging, projects: [web]}]\n"
    )
    run(str(path))
    assert Project.objects.get(slug="web").environment == "staging"
    assert VariableGroup.objects.get(name="g").environment == "staging"


def test_a_change_made_after_validation_that_breaks_the_guard_rolls_everything_back(
    world, tmp_path
):
    # The file was valid when read; a project relabelled before the transaction makes the
    # grant it asks for break the guard: refused whole, naming both labels.
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    config = configuration.read(str(path), environ={})
    Project.objects.filter(slug="web").update(environment="development")
    before = snapshot()
    with pytest.raises(ValidationError) as caught:
        configuration.apply(config)
    message = " ".join(caught.value.messages)
    assert "'web' is labelled 'development'" in message and "'production'" in message
    assert snapshot() == before
    assert not Project.objects.filter(slug="api").exists()


CHANGE = """\
organizations:
  - slug: acme
    groups:
      - name: aaa-new
        access: all
        variables:
          - {name: FIRST, value: rival}
      - name: production
        variables:
          - {name: SECOND, value: rotated, secret: true}
          - {name: THIRD, value: trois}
"""


def test_dry_run_prints_the_plan_per_project_and_a_real_apply_prints_the_same(world, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    run(str(path))
    path.write_text(CHANGE)
    before = snapshot()
    dry = run(str(path), "--dry-run")
    assert snapshot() == before
    plan = dry[dry.index("Plan (effective environments):") :].splitlines()[1:]
    assert plan == [
        "  acme: This change affects 2 projects.",
        "    acme/api:",
        "      changed: FIRST: 'one' → 'rival', source group:production → group:aaa-new",
        "      changed: SECOND: value changed",
        "      changed: THIRD: 'three' → 'trois'",
        "      new conflict: FIRST: group:aaa-new wins over group:production (same priority)",
        "    acme/web:",
        "      changed: FIRST: 'one' → 'rival', source group:production → group:aaa-new",
        "      changed: SECOND: value changed",
        "      changed: THIRD: 'three' → 'trois'",
        "      new conflict: FIRST: group:aaa-new wins over group:production (same priority)",
    ]
    assert "rotated" not in dry and "two" not in dry  # secret values, old and new

    real = run(str(path))
    assert real[real.index("Effect on environments:") :].splitlines()[1:] == plan
    assert "acme: no project's environment changes." in run(str(path), "--dry-run")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: SQLite has one writer at a time"
)
@pytest.mark.django_db(transaction=True)
def test_runners_do_not_wait_for_an_apply_that_holds_the_organization(world, tmp_path):
    """apply_config locked the organization row FOR UPDATE until it committed, and every
    resolution's access event (a foreign key to it: FOR KEY SHARE) waited for the whole apply."""
    raw = token_issue(project=world.web, name="ci")[1]
    path = tmp_path / "config.yaml"
    path.write_text(VALID)

    def resolve() -> None:
        with connection.cursor() as cursor:  # fail fast instead of hanging the test
            cursor.execute("SET lock_timeout = '5s'")
        response = Client().get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200

    def organization_locked(sql: str) -> bool:
        return f'FROM "{Organization._meta.db_table}"' in sql and "FOR " in sql

    with between_statements(organization_locked, resolve, times=1) as interleaving:
        run(str(path))
    assert interleaving.runs == 1 and interleaving.errors == []
    assert interleaving.seconds[0] < 3
