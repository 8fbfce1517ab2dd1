"""Manifests: each resolution's versions (history rows) across edits, key rotation,
restores and deletes; one stored row per distinct manifest; a small access event."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from orgenv import crypto, services
from orgenv.forensics.manifests import delivered
from orgenv.models import AuditEvent, Manifest, ProjectVariable, Variable
from orgenv.tokens import token_issue
from tests.conftest import make_group

URL = "/api/v1/environment"
AGENT = "orgenv-cli/0.1.0"


@pytest.fixture
def runner(world, client, django_capture_on_commit_callbacks):
    group = make_group(
        world.acme, "production", projects=[world.web], secrets={"DB_PASSWORD": "one"}
    )
    ProjectVariable.objects.create(project=world.web, name="MODE", value="live")
    _, raw = token_issue(project=world.web, name="ci")

    def fetch() -> AuditEvent:
        # Commit callbacks run as they would outside the test's transaction.
        with django_capture_on_commit_callbacks(execute=True):
            response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_USER_AGENT=AGENT)
        assert response.status_code == 200
        return AuditEvent.objects.select_related("manifest").get(pk=response["X-Orgenv-Resolution"])

    return group, fetch


def versions(event: AuditEvent) -> dict[str, int]:
    return {item.name: item.version for item in delivered(event.manifest)}


def latest(model, **lookup) -> int:
    return model.history.filter(**lookup).order_by("-history_id").first().history_id


def test_each_delivered_variable_names_its_history_row(runner):
    group, fetch = runner
    event = fetch()
    db_password = Variable.objects.get(name="DB_PASSWORD")
    assert [
        (i.name, i.source, i.row, i.version, i.is_secret) for i in delivered(event.manifest)
    ] == [
        ("DB_PASSWORD", "group:production", db_password.pk, latest(Variable), True),
        ("MODE", "project", ProjectVariable.objects.get().pk, latest(ProjectVariable), False),
    ]
    assert "one" not in str(event.manifest.variables) + str(event.manifest.conflicts)


def test_an_edit_is_a_new_version_and_an_unchanged_project_reuses_its_manifest(runner):
    group, fetch = runner
    first, second = fetch(), fetch()
    assert first.manifest_id == second.manifest_id and Manifest.objects.count() == 1
    services.variable_set(group=group, name="DB_PASSWORD", value="two", is_secret=True)
    third = fetch()
    assert third.manifest_id != first.manifest_id
    assert versions(third)["DB_PASSWORD"] == latest(Variable) != versions(first)["DB_PASSWORD"]
    assert versions(third)["MODE"] == versions(first)["MODE"]


def test_key_rotation_keeps_every_version(runner, settings):
    group, fetch = runner
    key = Fernet.generate_key().decode()
    before = fetch()
    settings.FERNET_KEYS = [key, *settings.FERNET_KEYS]
    call_command("rotate_keys", stdout=io.StringIO())
    after = fetch()
    # New ciphertexts, same values and history rows: the very same manifest row.
    assert after.manifest_id == before.manifest_id


def test_a_restore_of_an_older_ciphertext_is_a_new_version(runner):
    group, fetch = runner
    first = fetch()
    old_token = Variable.history.filter(history_id=versions(first)["DB_PASSWORD"]).values_list(
        crypto.stored_token("value"), flat=True
    )[0]
    services.variable_set(group=group, name="DB_PASSWORD", value="two", is_secret=True)
    fetch()
    # What a restore does: write back the stored ciphertext of the old version, as a change.
    variable = Variable.objects.get(name="DB_PASSWORD")
    variable.value = crypto.Ciphertext(old_token)
    variable.save()
    restored = fetch()
    assert versions(restored)["DB_PASSWORD"] == latest(Variable)
    assert versions(restored)["DB_PASSWORD"] != versions(first)["DB_PASSWORD"]


def test_a_deleted_variable_leaves_the_manifest_and_is_no_longer_delivered(runner):
    group, fetch = runner
    first = fetch()
    Variable.objects.get(name="DB_PASSWORD").delete()
    after = fetch()
    assert list(versions(after)) == ["MODE"]
    assert "DB_PASSWORD" in versions(AuditEvent.objects.get(pk=first.pk))


def _row_bytes(event_id: int) -> int:
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT pg_column_size(e.*) FROM {table} e WHERE id = %s", [event_id])
        else:
            columns = [f.column for f in AuditEvent._meta.concrete_fields]
            total = " + ".join(f"coalesce(length(CAST({c} AS BLOB)), 0)" for c in columns)
            cursor.execute(f"SELECT {total} FROM {table} WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def test_an_unchanged_projects_event_costs_at_most_300_bytes(world, client, runner):
    group, fetch = runner
    for i in range(200):
        Variable.objects.create(group=group, name=f"VARIABLE_{i:03}", value="x" * 40)
    fetch()
    manifests = Manifest.objects.count()
    event = fetch()
    assert Manifest.objects.count() == manifests  # nothing new stored for an unchanged project
    assert len(event.manifest.variables) == 202
    size = _row_bytes(event.pk)
    print(f"access event of an unchanged project: {size} bytes on {connection.vendor}")
    assert size <= 300
