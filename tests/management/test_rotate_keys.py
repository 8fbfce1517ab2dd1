"""rotate_keys: after it, the old key can be removed and everything still decrypts."""

from __future__ import annotations

import io
import threading
import time

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import override_settings

from orgenv import crypto, services
from orgenv.models import AuditEvent, ProjectVariable, Variable
from tests.concurrency import between_statements
from tests.conftest import make_group

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def rotate() -> str:
    out = io.StringIO()
    call_command("rotate_keys", "--batch-size", "2", stdout=out)  # small batches: paging runs
    return out.getvalue()


def raw_tokens(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {table} ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def written_with_key_a(world, settings):
    settings.FERNET_KEYS = [KEY_A]
    group = make_group(world.acme, "g", variables={"A": "alpha", "B": "beta"}, secrets={"S": "s1"})
    services.variable_set(group=group, name="S", value="s2", is_secret=True)  # a second history row
    services.project_variable_set(project=world.web, name="P", value="pv", is_secret=False)
    return group


def test_after_rotation_the_old_key_can_be_removed(written_with_key_a, settings):
    group = written_with_key_a
    history_before = Variable.history.count()
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    output = rotate()
    # 3 variables + 4 history rows (3 created, 1 changed) + 1 project variable + its history row
    assert "Re-encrypted 9 value(s)" in output
    assert f"{Variable.history.model._meta.db_table}.value: 4 re-encrypted" in output

    settings.FERNET_KEYS = [KEY_B]
    assert {v.name: v.value for v in group.variables.all()} == {
        "A": "alpha",
        "B": "beta",
        "S": "s2",
    }
    assert sorted(h.value for h in Variable.history.all()) == ["alpha", "beta", "s1", "s2"]
    assert ProjectVariable.objects.get().value == "pv"
    assert ProjectVariable.history.get().value == "pv"
    assert Variable.history.count() == history_before  # rotation is not a change of value


def test_running_it_again_changes_nothing(written_with_key_a, settings):
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    rotate()
    tokens = raw_tokens(Variable._meta.db_table)
    output = rotate()
    assert "Re-encrypted 0 value(s) with the first key; 9 already used it." in output
    assert raw_tokens(Variable._meta.db_table) == tokens


def test_a_value_no_key_decrypts_stops_everything_and_names_the_row(written_with_key_a, settings):
    stray = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    victim = Variable.objects.get(name="B")
    Variable.objects.filter(pk=victim.pk).update(value=crypto.Ciphertext(stray))
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    before = raw_tokens(Variable._meta.db_table)
    with pytest.raises(CommandError) as caught:
        rotate()
    message = str(caught.value)
    assert f"{Variable._meta.db_table}.value (row id={victim.pk})" in message
    assert "Nothing was changed" in message
    assert raw_tokens(Variable._meta.db_table) == before
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.KEYS_ROTATED).exists()


def test_rotation_is_audited_with_counts(written_with_key_a, settings):
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    rotate()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEYS_ROTATED)
    assert event.actor == "system:rotate_keys"
    assert event.detail["rotated"][f"{Variable._meta.db_table}.value"] == 3


def _first_page_of_variables(sql: str) -> bool:
    # The rotation's reads of the first page of orgenv_variable (the checking pass's and the
    # rotating pass's), not the page reads after it nor the re-read of changed rows.
    return (
        sql.startswith("SELECT")
        and f'FROM "{Variable._meta.db_table}"' in sql
        and f'"{Variable._meta.db_table}"."id" >' not in sql
        and " IN (" not in sql
    )


@pytest.mark.django_db(transaction=True)
def test_a_value_edited_while_rotating_is_never_written_back(written_with_key_a, settings):
    """An editor saves A between the rotation's read of A and its write: the rotation must
    not put the old token back (it did, on PostgreSQL), and the editor must not wait for the
    rotation (on SQLite it failed with "database is locked" after 20 s)."""
    group = written_with_key_a
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    edits = iter(["a2", "a3", "a4"])

    def edit() -> None:
        # Written by a server still on the old key ring, so that the row needs rotating
        # again: the rotation must read the new version and rotate that.
        with override_settings(FERNET_KEYS=[KEY_A]):
            services.variable_set(group=group, name="A", value=next(edits), is_secret=False)

    with between_statements(_first_page_of_variables, edit) as interleaving:
        output = rotate()

    assert interleaving.errors == []
    assert interleaving.runs == 2  # once after the check's read, once after the rotation's
    assert max(interleaving.seconds) < 5  # the editor did not wait for the rotation
    assert "1 value(s) were changed by an editor while rotating" in output
    assert [h.value for h in Variable.history.filter(name="A").order_by("-history_id")] == [
        "a3",
        "a2",
        "alpha",
    ]
    # The variables were rotated in their newest version. (History rows that a server on the
    # old key ring adds after rotation passed their table are why rotate_keys refuses to run
    # while such a server is up.)
    settings.FERNET_KEYS = [KEY_B]
    assert {v.name: v.value for v in group.variables.all()} == {
        "A": "a3",
        "B": "beta",
        "S": "s2",
    }


@pytest.mark.django_db(transaction=True)
def test_an_editor_never_waits_for_more_than_one_batch(written_with_key_a, settings):
    group = written_with_key_a
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    def edit() -> None:
        services.variable_set(group=group, name="A", value="edited", is_secret=False)

    def second_page(sql: str) -> bool:  # between two batches of the rotating pass
        return sql.startswith("SELECT") and f'"{Variable._meta.db_table}"."id" >' in sql

    with between_statements(second_page, edit) as interleaving:
        rotate()
    assert interleaving.errors == []
    assert interleaving.runs >= 2 and max(interleaving.seconds) < 5
    settings.FERNET_KEYS = [KEY_B]
    assert Variable.objects.get(name="A").value == "edited"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: SQLite has one writer at a time"
)
@pytest.mark.django_db(transaction=True)
def test_a_rotation_waits_for_an_import_instead_of_deadlocking_with_it(
    written_with_key_a, settings, tmp_path
):
    """A rotation batch updated the rows first and the organization after (its generation,
    by trigger); an import holds the organization first and then updates the rows. Met
    halfway, they deadlocked and PostgreSQL aborted one. The rotation now locks the
    organizations of its batch first, in the same order as the bulk writers."""
    group = written_with_key_a
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    env = tmp_path / "g.env"
    env.write_text("A=a2\nB=b2\n")
    rotation: list[BaseException | str] = []

    def rotate_in_another_connection() -> None:
        try:
            rotation.append(rotate())
        except BaseException as exc:  # noqa: BLE001 - asserted below
            rotation.append(exc)
        finally:
            connections.close_all()

    def another_connection_waits() -> bool:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] > 0

    def started(sql: str) -> bool:  # the import's transaction holds the organization
        return connection.in_atomic_block and "FOR NO KEY UPDATE" in sql

    thread = threading.Thread(target=rotate_in_another_connection)

    def start_rotation() -> None:
        thread.start()
        deadline = time.monotonic() + 10
        while not another_connection_waits():
            assert time.monotonic() < deadline, "the rotation never waited for the import"
            time.sleep(0.05)

    with between_statements(started, start_rotation, times=1) as interleaving:
        call_command("import_env", "acme/g", str(env), stdout=io.StringIO())
    thread.join(30)
    assert interleaving.errors == []
    assert len(rotation) == 1 and isinstance(rotation[0], str), rotation
    settings.FERNET_KEYS = [KEY_B]  # everything readable with the new key alone
    assert {v.name: v.value for v in group.variables.all()} == {"A": "a2", "B": "b2", "S": "s2"}
