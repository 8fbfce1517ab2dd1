"""prune_audit: old events go, recent events and all history stay."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.test import Client
from django.utils import timezone

from orgenv import services
from orgenv.audit import events as audit
from orgenv.forensics.manifests import delivered
from orgenv.models import AuditEvent, Manifest, Variable
from orgenv.services.bulk import SQLITE_WORK
from orgenv.tokens import token_issue
from tests.concurrency import between_statements
from tests.conftest import make_group


def _event_at(world, days_ago: int) -> AuditEvent:
    event = audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor=f"d{days_ago}")
    # `at` is auto_now_add and AuditEvent.objects refuses updates: backdate through Django's
    # plain base manager, which only code (never the app's paths) can reach.
    AuditEvent._base_manager.filter(pk=event.pk).update(
        at=timezone.now() - timedelta(days=days_ago)
    )
    return event


def _run(*args: str) -> str:
    out = StringIO()
    call_command("prune_audit", *args, stdout=out)
    return out.getvalue()


def test_it_deletes_events_older_than_the_retention_and_keeps_history(world, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    group = make_group(world.acme, "g", secrets={"S": "x"})
    group.history.update(history_date=timezone.now() - timedelta(days=400))
    for days in (400, 31, 29, 0):
        _event_at(world, days)
    assert "Would delete 2 audit event(s)" in _run("--dry-run")
    assert AuditEvent.objects.count() == 4
    assert "Deleted 2 audit event(s)" in _run()
    assert sorted(AuditEvent.objects.values_list("actor", flat=True)) == ["d0", "d29"]
    assert group.history.count() >= 1 and Variable.history.count() == 1


def test_days_overrides_the_setting_and_must_be_positive(world):
    for days in (10, 3):
        _event_at(world, days)
    assert "Deleted 1 audit event(s)" in _run("--days", "5")
    with pytest.raises(CommandError, match="--days must be at least 1"):
        _run("--days", "0")


@pytest.mark.django_db(transaction=True)
def test_it_deletes_in_short_batches_that_let_resolutions_write_between_them(world):
    """One DELETE of a day's events (864,000) held SQLite's write lock for 27 s: every
    resolution meanwhile waited or failed with "database is locked"."""
    for days in (400, 300, 200, 100, 50):
        _event_at(world, days)
    cutoff = timezone.now() - timedelta(days=30)

    def resolution_meanwhile() -> None:
        audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor="meanwhile")

    def a_batch_chosen(sql: str) -> bool:  # between one batch's commit and the next one
        return sql.startswith("SELECT") and f'FROM "{AuditEvent._meta.db_table}"' in sql

    with between_statements(a_batch_chosen, resolution_meanwhile) as interleaving:
        assert AuditEvent.objects.prune(cutoff, batch_size=2) == 5
    assert interleaving.errors == []
    assert interleaving.runs == 4  # batches of 2, 2 and 1 row, then none left
    assert max(interleaving.seconds) < 5
    assert list(AuditEvent.objects.values_list("actor", flat=True)) == ["meanwhile"] * 4


@pytest.mark.django_db(transaction=True)
def test_a_resolution_waiting_for_the_lock_gets_in_between_two_batches(world):
    """On SQLite a writer that finds the lock taken sleeps between tries (up to 100 ms), and
    prune began its next batch as soon as it committed: a resolution could wait out batch
    after batch. Prune now leaves the lock free for longer than that once it has held it for
    SQLITE_WORK (orgenv.services.bulk)."""
    for days in (500, 400, 300, 200, 100):
        _event_at(world, days)
    finished = threading.Event()
    errors: list[BaseException] = []

    def resolution() -> None:
        try:
            with transaction.atomic():  # as orgenv.audit.resolutions writes its event
                audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor="meanwhile")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            finished.set()
            connections.close_all()

    finished_at_each_batch: list[bool] = []

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        result = execute(sql, params, many, context)
        if sql.startswith(f'DELETE FROM "{AuditEvent._meta.db_table}"'):
            finished_at_each_batch.append(finished.is_set())
            if len(finished_at_each_batch) == 1:
                # Inside the first batch's transaction: the resolution starts, finds the lock
                # taken, and is well into its sleeping between tries when the batch commits.
                threading.Thread(target=resolution).start()
                time.sleep(SQLITE_WORK + 0.1)
        return result

    with connection.execute_wrapper(wrapper):
        assert AuditEvent.objects.prune(timezone.now() - timedelta(days=30), batch_size=1) == 5
    assert finished.wait(30) and errors == []
    assert finished_at_each_batch[0] is False
    assert finished_at_each_batch[-1] is True  # it got in before the last batch


def _resolved(client, raw: str, etag: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    if etag:
        headers["HTTP_IF_NONE_MATCH"] = etag
    response = client.get("/api/v1/environment", **headers)
    assert response.status_code in (200, 304), response.content
    return AuditEvent.objects.get(pk=response["X-Orgenv-Resolution"]), response["ETag"]


def _backdate(**lookup: Any) -> None:
    old = timezone.now() - timedelta(days=40)
    AuditEvent._base_manager.filter(**lookup).update(at=old)
    Manifest.objects.filter(
        pk__in=AuditEvent.objects.filter(**lookup).values("manifest_id")
    ).update(created_at=old)


def test_manifests_no_event_references_any_more_go_with_their_events(world, client):
    group = make_group(world.acme, "g", projects=[world.web], variables={"A": "1"})
    _, raw = token_issue(project=world.web, name="ci")
    first, _ = _resolved(client, raw)
    services.variable_set(group=group, name="A", value="2", is_secret=False)  # a new manifest
    second, _ = _resolved(client, raw)
    assert first.manifest_id != second.manifest_id
    _backdate(pk=first.pk)
    # A manifest as old, but referenced by a recent event, stays.
    kept, _ = _resolved(client, raw)
    Manifest.objects.filter(pk=kept.manifest_id).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    assert "and 1 manifest(s)" in _run("--days", "30", "--dry-run")
    assert Manifest.objects.filter(pk=first.manifest_id).exists()
    assert "Deleted 1 audit event(s)" in _run("--days", "30")
    assert not Manifest.objects.filter(pk=first.manifest_id).exists()
    assert Manifest.objects.filter(pk=second.manifest_id).exists()
    assert "and 0 manifest(s)" in _run("--days", "30")


@pytest.mark.django_db(transaction=True)
def test_a_manifest_this_process_remembered_and_pruning_deleted_is_stored_again(world):
    make_group(world.acme, "g", projects=[world.web], secrets={"S": "secret-value"})
    _, raw = token_issue(project=world.web, name="ci")
    client = Client()
    first, etag = _resolved(client, raw)
    assert _resolved(client, raw, etag)[0].manifest_id == first.manifest_id
    # Everything up to now is older than the retention, and pruned: this process still
    # remembers the manifest's id for the unchanged project, and its last answer.
    _backdate(project=world.web)
    _run("--days", "30")
    assert not Manifest.objects.filter(pk=first.manifest_id).exists()
    again, etag_again = _resolved(client, raw)  # the answer given again
    assert etag_again == etag
    assert Manifest.objects.filter(pk=again.manifest_id).exists()
    assert delivered(again.manifest)[0].name == "S"
    revalidated, _ = _resolved(client, raw, etag)
    assert revalidated.manifest_id == again.manifest_id
