"""restore: a group or a project's variables back to a past time, as a new recorded change,
with values moved as stored. Round trips compare resolve_env now with resolve_env --as-of."""

from __future__ import annotations

import io
import json
import time

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from orgenv import crypto
from orgenv.models import Project, ProjectVariable, Variable, VariableGroup


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def env(label: str, *args: str) -> dict:
    return json.loads(run("resolve_env", label, "--format", "json", *args))


def moment() -> str:
    time.sleep(0.01)  # history dates are distinct from the instant we name
    when = timezone.now().isoformat()
    time.sleep(0.01)
    return when


@pytest.fixture
def demo(db):
    call_command("demo", stdout=io.StringIO())


def change_production_group() -> None:
    group = VariableGroup.objects.get(name="production")
    secret = group.variables.get(name="PRODUCTION_SECRET")
    secret.value = "rotated"
    secret.save()
    group.variables.get(name="PRODUCTION_ENVVAR").delete()
    Variable.objects.create(group=group, name="LATER", value="later")
    group.priority = 3
    group.save()
    group.projects.add(Project.objects.get(slug="production-api"))


def test_restoring_a_group_gives_what_resolve_env_as_of_gives(demo):
    then = moment()
    before = {p: env(f"acme/{p}") for p in ("production_db", "production-api")}
    change_production_group()
    assert env("acme/production_db") != before["production_db"]

    output = run("restore", "acme/production", "--as-of", then)

    assert env("acme/production_db") == env("acme/production_db", "--as-of", then)
    assert env("acme/production_db") == before["production_db"]  # secrets included
    assert env("acme/production-api") == before["production-api"]  # the grant went again
    assert "variable PRODUCTION_SECRET: value changed" in output
    assert "variable PRODUCTION_ENVVAR: restored (deleted since)" in output
    assert "variable LATER: removed (created since)" in output
    assert "grant to project production-api: removed" in output
    assert "priority: 3 → 0" in output
    assert "rotated" not in output and "hidden" not in output


def test_the_restore_is_a_new_recorded_change_and_values_move_as_stored(demo):
    then = moment()
    change_production_group()
    run("restore", "acme/production", "--as-of", then, "--actor", "admin")
    row = Variable.history.filter(name="PRODUCTION_SECRET").latest()
    assert row.history_actor == "admin"
    assert row.history_change_reason.startswith("restored to ")
    restored = (
        Variable.objects.filter(name="PRODUCTION_SECRET")
        .values_list(crypto.stored_token("value"), flat=True)
        .get()
    )
    original = (
        Variable.history.filter(name="PRODUCTION_SECRET")
        .order_by("history_date")
        .values_list(crypto.stored_token("value"), flat=True)
        .first()
    )
    assert restored == original  # the token itself, not a re-encryption


def test_a_dry_run_prints_the_plan_and_writes_nothing(demo):
    then = moment()
    change_production_group()
    rows = Variable.history.count()
    output = run("restore", "acme/production", "--as-of", then, "--dry-run")
    assert "Dry run: nothing was written." in output
    assert "acme/production_db:" in output and "PRODUCTION_SECRET: value changed" in output
    assert Variable.history.count() == rows
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "rotated"


def test_a_restore_of_a_restore_works(demo):
    first = moment()
    change_production_group()
    second = moment()
    run("restore", "acme/production", "--as-of", first)
    assert env("acme/production_db") == env("acme/production_db", "--as-of", first)
    run("restore", "acme/production", "--as-of", second)
    assert env("acme/production_db") == env("acme/production_db", "--as-of", second)
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "rotated"
    assert "nothing to restore" in run("restore", "acme/production", "--as-of", second)


def test_a_project_restore_brings_its_variables_back(demo):
    then = moment()
    project = Project.objects.get(slug="staging-api")
    project.variables.get(name="API_ENDPOINT").delete()
    ProjectVariable.objects.create(project=project, name="TOKEN", value="t", is_secret=True)
    run("restore", "acme/staging-api", "--as-of", then)
    assert env("acme/staging-api") == env("acme/staging-api", "--as-of", then)
    assert list(project.variables.values_list("name", flat=True)) == ["API_ENDPOINT"]


def test_a_value_under_a_retired_key_is_refused_naming_the_rows(demo, settings):
    then = moment()
    change_production_group()
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError) as caught:
        run("restore", "acme/production", "--as-of", then)
    message = str(caught.value)
    assert "no longer in FERNET_KEYS" in message
    assert "orgenv_historicalvariable history_id=" in message and "(PRODUCTION_SECRET)" in message


def test_a_value_under_an_older_configured_key_is_re_encrypted_with_the_first(demo, settings):
    then = moment()
    change_production_group()
    old = list(settings.FERNET_KEYS)
    new = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new, *old]
    run("restore", "acme/production", "--as-of", then)
    settings.FERNET_KEYS = [new]  # the old key retired: the restored values still read
    assert Variable.objects.get(name="PRODUCTION_SECRET").value == "hidden"


def test_an_unknown_group_at_that_time_is_named(demo):
    with pytest.raises(CommandError, match="There was no group 'nope' in organization 'acme'"):
        run("restore", "acme/nope", "--as-of", moment())
