from __future__ import annotations

import threading

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.db import connection

from orgenv import crypto
from orgenv.models import Variable
from tests.conftest import make_group


def raw_value(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {Variable._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_a_value_round_trips_through_the_database(world):
    group = make_group(world.acme, "g", variables={"X": "héllo\nwörld"})
    assert Variable.objects.get(group=group).value == "héllo\nwörld"


def test_the_raw_column_never_holds_the_plaintext(world):
    group = make_group(world.acme, "g", variables={"PUBLIC": "plain-public-value"})
    stored = raw_value(group.variables.get().pk)
    assert "plain-public-value" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token


def test_a_value_no_key_decrypts_raises_naming_table_and_row(world, settings):
    variable = make_group(world.acme, "g", secrets={"S": "s3cret-value"}).variables.get()
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    loaded = Variable.objects.get(pk=variable.pk)  # the row loads (it can be repaired)...
    with pytest.raises(crypto.DecryptionError) as caught:
        str(loaded.value)  # ...but its value is an error, never text
    message = str(caught.value)
    assert Variable._meta.db_table in message and f"id={variable.pk}" in message
    assert "s3cret-value" not in message


def test_tampered_ciphertext_raises(world):
    variable = make_group(world.acme, "g", variables={"X": "value"}).variables.get()
    token = raw_value(variable.pk)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Variable._meta.db_table} SET value = %s WHERE id = %s",
            [tampered, variable.pk],
        )
    with pytest.raises(crypto.DecryptionError):
        str(Variable.objects.get(pk=variable.pk).value)


def test_an_old_key_still_decrypts_after_a_new_one_is_put_first(world, settings):
    old = settings.FERNET_KEYS[0]
    variable = make_group(world.acme, "g", variables={"X": "kept"}).variables.get()
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), old]
    assert Variable.objects.get(pk=variable.pk).value == "kept"


def test_signer_names_the_key_that_wrote_a_token_without_decrypting(settings):
    old = settings.FERNET_KEYS[0]
    written_with_old = crypto.encrypt("v")
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), old]
    assert crypto.signer(crypto.encrypt("v")) == 0
    assert crypto.signer(written_with_old) == 1
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    assert crypto.signer(written_with_old) is None
    assert crypto.signer("not a token ✗") is None


def test_only_isnull_lookups_are_allowed(world):
    with pytest.raises(FieldError, match="only isnull"):
        list(Variable.objects.filter(value="x"))
    assert not Variable.objects.filter(value__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_reads_never_see_ciphertext(world, settings):
    group = make_group(world.acme, "g", variables={f"V{i}": f"value-{i}" for i in range(20)})
    seen: list[str] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(5):
                seen.extend(Variable.objects.filter(group=group).values_list("value", flat=True))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert seen and all(v.startswith("value-") for v in seen)


def test_the_system_check_rejects_a_malformed_key(settings):
    from orgenv.checks import check_fernet_keys

    settings.FERNET_KEYS = ["not-a-key"]
    assert [e.id for e in check_fernet_keys()] == ["orgenv.E001"]
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    assert check_fernet_keys() == []


def test_form_cleaning_sees_plaintext_and_saves_it_encrypted(world):
    from django.forms import modelform_factory

    variable = make_group(world.acme, "g", variables={"X": "before"}).variables.get()
    form_class = modelform_factory(Variable, fields=["name", "value", "is_secret"])
    loaded = Variable.objects.get(pk=variable.pk)
    assert form_class(instance=loaded).initial["value"] == "before"

    form = form_class({"name": "X", "value": "after", "is_secret": ""}, instance=loaded)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["value"] == "after"
    form.save()
    assert Variable.objects.get(pk=variable.pk).value == "after"
    assert "after" not in raw_value(variable.pk)
