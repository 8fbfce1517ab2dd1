"""import_env: a dotenv file into an existing group, all or nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from orgenv.models import AuditEvent, Variable
from tests.conftest import make_group


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_env", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def group(world):
    return make_group(world.acme, "backend", variables={"EXISTING": "old", "UNTOUCHED": "same"})


def values(group) -> dict[str, tuple[str, bool]]:
    return {v.name: (v.value, v.is_secret) for v in group.variables.all()}


def test_it_creates_and_updates_and_deletes_nothing(group, tmp_path):
    env = tmp_path / "app.env"
    env.write_text(
        "# exported from the old CI\n"
        "export EXISTING=new\n"
        "API_KEY='k3y with spaces'\n"
        'CERT="-----BEGIN-----\\nabc\\n-----END-----"\n'
    )
    output = run("acme/backend", str(env), "--secret", "API_KEY")
    assert values(group) == {
        "EXISTING": ("new", False),
        "UNTOUCHED": ("same", False),
        "API_KEY": ("k3y with spaces", True),
        "CERT": ("-----BEGIN-----\nabc\n-----END-----", False),
    }
    assert "2 created, 1 updated, 0 unchanged" in output
    assert "k3y" not in output
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.VARIABLES_IMPORTED)
    assert event.detail["created"] == ["API_KEY", "CERT"]
    assert event.detail["updated"] == ["EXISTING"]
    assert event.group_name == "backend" and event.organization_slug == "acme"
    assert "k3y" not in str(event.detail)


def test_one_bad_line_changes_nothing_and_names_the_line(group, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("EXISTING=changed\nNEW=1\nBAD-NAME=2\nALSO_NEW=3\n")
    before = (values(group), Variable.history.count())
    with pytest.raises(CommandError) as caught:
        run("acme/backend", str(env))
    assert f"{env}:3: 'BAD-NAME' is not a valid variable name" in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert (values(group), Variable.history.count()) == before


def test_every_bad_line_is_reported(group, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("A=1\nNOT AN ASSIGNMENT\nORGENV_TOKEN=x\nA=2\nB='open\n")
    with pytest.raises(CommandError) as caught:
        run("acme/backend", str(env))
    lines = str(caught.value).splitlines()[1:]
    assert [line.split(":")[1] for line in lines] == ["2", "5"]  # parse errors stop first
    env.write_text('A=1\nORGENV_TOKEN=x\nA=2\nNUL="a\x00b"\n')
    with pytest.raises(CommandError) as caught:
        run("acme/backend", str(env))
    message = str(caught.value)
    assert f"{env}:2: 'ORGENV_TOKEN' starts with ORGENV_" in message
    assert f"{env}:3: A is set twice (first on line 1)." in message
    assert f"{env}:4: A value cannot contain a NUL character." in message


def test_all_secret_marks_everything_secret(group, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("ONE=1\nTWO=2\n")
    run("acme/backend", str(env), "--all-secret")
    assert values(group)["ONE"] == ("1", True) and values(group)["TWO"] == ("2", True)


def test_an_existing_secret_stays_secret_when_imported_without_flags(group, tmp_path):
    group.variables.create(name="TOKEN", value="old-token", is_secret=True)
    env = tmp_path / "app.env"
    env.write_text("TOKEN=new-token\n")
    run("acme/backend", str(env))
    assert values(group)["TOKEN"] == ("new-token", True)


def test_secret_must_name_a_variable_of_the_file(group, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("ONE=1\n")
    with pytest.raises(CommandError, match="--secret TWO: .* does not set TWO"):
        run("acme/backend", str(env), "--secret", "TWO")
    assert "ONE" not in values(group)


def test_an_unchanged_file_writes_no_history(group, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("EXISTING=old\nUNTOUCHED=same\n")
    before = (Variable.history.count(), AuditEvent.objects.count())
    assert "0 created, 0 updated, 2 unchanged" in run("acme/backend", str(env))
    assert (Variable.history.count(), AuditEvent.objects.count()) == before


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("backend", "is not ORG/GROUP"),
        ("acme/nope", "There is no group 'nope' in organization 'acme'"),
        ("globex/backend", "There is no group 'backend' in organization 'globex'"),
    ],
)
def test_the_target_must_be_an_existing_group(group, tmp_path, target, words):
    env = tmp_path / "app.env"
    env.write_text("ONE=1\n")
    with pytest.raises(CommandError, match=words):
        run(target, str(env))


def test_a_missing_file_is_one_clear_line(group, tmp_path):
    with pytest.raises(CommandError, match="Cannot read .*missing.env: No such file"):
        run("acme/backend", str(tmp_path / "missing.env"))
