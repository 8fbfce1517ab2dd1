"""orgenv.services.definitions through its callers, `import_env` and `apply_config`: thousands
of variables written in one short transaction, recorded in history as row-by-row saves were,
and visible to the very next resolution."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client

from orgenv import crypto, services
from orgenv.models import AuditEvent, Organization, Variable, VariableGroup
from orgenv.services import definitions
from orgenv.tokens import token_issue
from tests.concurrency import between_statements
from tests.conftest import make_group

N = 2000  # half of them replace existing values, half are new


@pytest.fixture
def big(world) -> VariableGroup:
    group = make_group(world.acme, "big", projects=[world.web])
    Variable.objects.bulk_create(
        Variable(group=group, name=f"V_{i:04}", value=f"old-{i}") for i in range(N // 2)
    )
    return group


def dotenv_file(tmp_path, version: str) -> str:
    path = tmp_path / f"{version}.env"
    path.write_text("".join(f"V_{i:04}={version}-{i}\n" for i in range(N)))
    return str(path)


def config_file(tmp_path, version: str) -> str:
    path = tmp_path / f"{version}.yaml"
    lines = ["organizations:", "  - slug: acme", "    groups:", "      - name: big"]
    lines += ["        variables:"]
    lines += [f"          - {{name: V_{i:04}, value: {version}-{i}}}" for i in range(N)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@contextlib.contextmanager
def statements_in_transactions() -> Iterator[list[str]]:
    """The statements this connection runs inside a transaction (needs transactional_db:
    the test itself is then not one)."""
    inside: list[str] = []

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        if connection.in_atomic_block:
            inside.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield inside


def values(group: VariableGroup) -> dict[str, str]:
    return dict(group.variables.values_list("name", "value"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["import_env", "apply_config"])
def test_thousands_of_variables_take_a_few_statements_inside_the_transaction(
    big, tmp_path, command
):
    """2,000 variables took 2,000 locking reads, 2,000 writes and 2,000 history inserts, one
    by one, in one transaction that held SQLite's only write lock (and, on PostgreSQL, the
    organization row) for seconds. Now the values are validated, encrypted and compared
    first, and the transaction writes in batches."""
    args = (
        ["acme/big", dotenv_file(tmp_path, "new")]
        if command == "import_env"
        else [config_file(tmp_path, "new")]
    )
    before = Variable.history.count()
    with statements_in_transactions() as inside:
        run(command, *args)
    assert values(big) == {f"V_{i:04}": f"new-{i}" for i in range(N)}
    assert Variable.history.count() == before + N
    writes = [sql for sql in inside if not sql.startswith("SELECT")]
    # Batches of up to 500 rows (fewer on SQLite, whose statements take at most 999
    # parameters): the variables and their history rows, created and updated.
    assert len(writes) <= N // 25, writes[:3]
    # Reads, as many whatever the number of variables: the organization, the groups, the
    # rows compared, the organization resolved before and after (the impact plan).
    assert len(inside) - len(writes) <= 30
    assert not any(" FOR " in sql and '"orgenv_variable"' in sql for sql in inside)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["import_env", "apply_config"])
def test_others_read_and_write_while_the_values_are_prepared(world, big, tmp_path, command):
    """While a large import or apply validates, encrypts and compares, it holds no lock: a
    runner resolves (on SQLite its access event needs the write lock) and an editor changes
    a value of the same group. The edit is seen: the file's value is written over it."""
    args = (
        ["acme/big", dotenv_file(tmp_path, "old")]
        if command == "import_env"
        else [config_file(tmp_path, "old")]
    )
    raw = token_issue(project=world.web, name="ci")[1]
    # V_0001 already holds the file's value: unchanged when planned, edited meanwhile.
    edited = big.variables.get(name="V_0001")

    def meanwhile() -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # fail fast instead of hanging the test
                cursor.execute("SET lock_timeout = '5s'")
        response = Client().get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 200
        assert response.json()["variables"]["V_0001"] == "old-1"
        services.variable_set(group=big, name="V_0001", value="edited", is_secret=False)

    def preparing(sql: str) -> bool:  # the group's rows read to plan, before any transaction
        return not connection.in_atomic_block and '"orgenv_variable"."not_a_secret"' in sql

    with between_statements(preparing, meanwhile, times=1) as interleaving:
        output = run(command, *args)
    assert interleaving.errors == []
    assert interleaving.runs == 1
    assert interleaving.seconds[0] < 3
    assert values(big)["V_0001"] == "old-1"
    assert [h.value for h in edited.history.order_by("history_id")][-2:] == ["edited", "old-1"]
    if command == "apply_config":  # the plan starts from the organization with the edit
        assert "changed: V_0001: 'edited' → 'old-1'" in output
        assert "V_0002" not in output


def test_history_and_audit_of_a_bulk_import_and_apply_are_those_of_single_saves(world, tmp_path):
    group = make_group(world.acme, "backend", variables={"KEEP": "k", "CHANGE": "c", "GO": "g"})
    rows = Variable.history.filter(group_id=group.pk)

    def recorded_since(last: int) -> set[tuple]:
        return {
            (r.name, r.history_type, r.history_actor, r.history_user, r.history_change_reason)
            for r in rows.filter(history_id__gt=last)
        }

    last = rows.latest("history_id").history_id
    env = tmp_path / "app.env"
    env.write_text("CHANGE=c2\nNEW=n\nKEEP=k\nTOKEN=s3cr3t\n")
    run("import_env", "acme/backend", str(env), "--secret", "TOKEN", "--actor", "alice")
    assert recorded_since(last) == {
        ("NEW", "+", "alice", world.alice, None),
        ("TOKEN", "+", "alice", world.alice, None),
        ("CHANGE", "~", "alice", world.alice, None),
    }
    last = rows.latest("history_id").history_id
    config = tmp_path / "config.yaml"
    config.write_text(
        "organizations:\n"
        "  - slug: acme\n"
        "    groups:\n"
        "      - name: backend\n"
        "        variables: [{name: CHANGE, value: c3}, {name: NEW, value: n}, {name: KEEP},\n"
        "                    {name: TOKEN, value: t0k3n}]\n"
    )
    run("apply_config", str(config), "--prune")
    assert recorded_since(last) == {
        ("GO", "-", "system:apply_config", None, None),
        ("CHANGE", "~", "system:apply_config", None, None),
        ("TOKEN", "~", "system:apply_config", None, None),
    }
    # Each history row holds the value as its row did, encrypted: never the plaintext.
    token = (
        rows.filter(name="TOKEN")
        .order_by("history_id")
        .values_list(crypto.stored_token("value"), flat=True)
    )
    assert [crypto.decrypt(t) for t in token] == ["s3cr3t", "t0k3n"]
    assert not any("s3cr3t" in t or "t0k3n" in t for t in token)
    assert rows.filter(name="TOKEN").latest("history_id").is_secret is True
    assert rows.get(history_type="-").value == "g"

    imported = AuditEvent.objects.get(kind=AuditEvent.Kind.VARIABLES_IMPORTED)
    assert (imported.actor, imported.group_name) == ("alice", "backend")
    assert imported.detail["created"] == ["NEW", "TOKEN"]
    assert imported.detail["updated"] == ["CHANGE"]
    applied = AuditEvent.objects.get(kind=AuditEvent.Kind.CONFIG_APPLIED)
    assert applied.detail["counts"] == {"variables": {"updated": 2, "deleted": 1}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["import_env", "apply_config"])
def test_the_next_resolution_sees_a_bulk_write(world, big, tmp_path, command):
    """The generation triggers run for bulk statements too, so the layers a server keeps
    for the old generation are not served again."""
    raw = token_issue(project=world.web, name="ci")[1]

    def fetch() -> dict[str, str]:
        response = Client().get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}")
        return response.json()["variables"]

    assert fetch()["V_0007"] == "old-7"
    generation = Organization.objects.get(pk=world.acme.pk).generation
    if command == "import_env":
        run(command, "acme/big", dotenv_file(tmp_path, "new"))
    else:
        run(command, config_file(tmp_path, "new"))
    assert Organization.objects.get(pk=world.acme.pk).generation != generation
    fetched = fetch()
    assert fetched["V_0007"] == "new-7" and fetched[f"V_{N - 1:04}"] == f"new-{N - 1}"


def test_a_definition_the_model_refuses_is_named_before_anything_is_written(world):
    # The callers' own validation (configuration.validation, importing.read) names the line
    # first; this is the model's last word, before any transaction.
    with pytest.raises(ValidationError) as caught:
        definitions.Definitions(
            Variable,
            [definitions.Wanted("FINE", "x", None), definitions.Wanted("BAD-NAME", "x", None)],
        )
    assert caught.value.messages == [
        "BAD-NAME (name): 'BAD-NAME' is not a valid variable name: use letters, digits and "
        "underscores, not starting with a digit."
    ]
