"""rotate_keys: after it, the old key can be removed and everything still decrypts."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from orgenv import crypto, services
from orgenv.models import AuditEvent, ProjectVariable, Variable
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
