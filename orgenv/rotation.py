"""Key rotation: re-encrypt every stored value with the first key of FERNET_KEYS.

Every table with an EncryptedTextField is covered, history tables included, because the
simple-history models are models too. Tokens move from the old key to the new one inside
the key ring (`crypto.rotate`): no plaintext leaves orgenv.crypto, and rows are written with
`QuerySet.update()` on the raw column, which neither creates history rows nor touches
`updated_at`: rotation changes how a value is stored, not the value.

Rotation is safe by construction, not by remembering an order: every app server records, at
most every HEARTBEAT_SECONDS (a setting) while it answers requests, the fingerprints of its key ring
(`Heartbeat`, a middleware), and `rotate_keys` refuses to re-encrypt while a server that
answered within RECENT_SECONDS does not hold the new first key — it would fail every
resolution once the values are rotated. It names those servers and says to reload them.

Rotation runs beside live traffic, so it never holds a lock for long and never overwrites a
newer value:
- a first, read-only pass checks that every value is signed by a key of FERNET_KEYS (its
  HMAC, without decrypting: a fifth of the cost), so that a missing key stops the command
  before anything is written;
- then each batch is read without a lock and written in its own short transaction (which
  first locks the batch's organizations, as every bulk writer does), each row
  with a conditional update (`WHERE pk = … AND value = <the token read>`, the whole batch in
  one statement): a value changed by an editor after the batch was read is not touched,
  and is read again and rotated in its new version.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router, transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import crypto
from .access import ORGANIZATION_PATH
from .models import AppServer, Organization
from .selectors.statements import statement_cursor
from .services.bulk import let_others_write

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
# A row rewritten by an editor between our read and our write is read again; one that keeps
# changing this many times in a row is left for the next run (and reported).
MAX_ATTEMPTS = 5


# A server records itself at most every settings.HEARTBEAT_SECONDS (default 10) while it
# answers requests, and counts as running for rotate_keys when it did within this window.
RECENT_SECONDS = 60


class RotationError(Exception):
    """Rotation cannot run: a value no key decrypts (naming table, column and row), or app
    servers that could not decrypt the result (naming them)."""


def key_fingerprint(key: str) -> str:
    """A short public name for a Fernet key: it identifies the key, it cannot recover it."""
    return hashlib.sha256(b"orgenv-fernet-key:" + key.encode()).hexdigest()[:16]


def ring_fingerprints() -> list[str]:
    return [key_fingerprint(k) for k in settings.FERNET_KEYS]


def server_name() -> str:
    return settings.SERVER_NAME or f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Middleware: this process answers requests with this key ring (an AppServer row,
    written at most every settings.HEARTBEAT_SECONDS, after the response is built; 0 turns
    it off, as the test suite does to keep query counts exact). The row goes
    when the process exits normally; a killed one ages out after RECENT_SECONDS."""

    _lock = threading.Lock()
    _next = 0.0
    _started = None

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        every = settings.HEARTBEAT_SECONDS
        now = time.monotonic()
        if every and now >= Heartbeat._next and Heartbeat._lock.acquire(blocking=False):
            try:
                Heartbeat._next = now + every
                self.beat()
            finally:
                Heartbeat._lock.release()
        return response

    @classmethod
    def beat(cls) -> None:
        now = timezone.now()
        if cls._started is None:
            cls._started = now
            atexit.register(cls.leave, server_name())
        try:
            AppServer.objects.update_or_create(
                name=server_name(),
                defaults={
                    "key_fingerprints": ring_fingerprints(),
                    "last_seen": now,
                    "started_at": cls._started,
                },
            )
        except DatabaseError:  # never fail an answer for this; the next request tries again
            logger.warning("Could not record this app server's heartbeat", exc_info=True)

    @staticmethod
    def leave(name: str) -> None:
        try:
            AppServer.objects.filter(name=name).delete()
        except Exception:  # noqa: BLE001 - at exit, the database may be gone already
            pass


def servers_without_first_key() -> list[AppServer]:
    """App servers that answered within RECENT_SECONDS and do not hold the first key."""
    first = key_fingerprint(settings.FERNET_KEYS[0])
    since = timezone.now() - timedelta(seconds=RECENT_SECONDS)
    return [
        server
        for server in AppServer.objects.filter(last_seen__gte=since)
        if first not in server.key_fingerprints
    ]


def check_servers() -> None:
    """Raise RotationError naming every running server that could not decrypt rotated
    values."""
    lagging = servers_without_first_key()
    if not lagging:
        return
    now = timezone.now()
    names = ", ".join(
        f"{s.name} (last answered {int((now - s.last_seen).total_seconds())} s ago)"
        for s in lagging
    )
    raise RotationError(
        f"Refusing to rotate: {len(lagging)} app server(s) answered within the last "
        f"{RECENT_SECONDS} s without the new first key in FERNET_KEYS, and would fail every "
        f"request once the values are rotated: {names}. Reload them with the new FERNET_KEYS "
        "(new key first, old key after it), then run rotate_keys again. Nothing was changed."
    )


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" → rows re-encrypted
    current: int = 0  # rows already encrypted with the first key
    raced: int = 0  # rows changed by an editor while being rotated (then rotated again)
    left: list[str] = field(default_factory=list)  # "table.column (row id=N)" still to rotate

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def encrypted_columns() -> list[tuple[type[Model], str]]:
    """(model, field name) of every encrypted column of every installed model."""
    return [
        (model, f.name)
        for model in apps.get_models()
        for f in crypto.encrypted_fields(model)
        if not model._meta.proxy
    ]


def _batches(model: type[Model], name: str, batch_size: int) -> Iterator[list[tuple[int, str]]]:
    """(pk, stored token) of every non-null value, in pk order, one short query per batch."""
    rows = (
        model._base_manager.exclude(**{f"{name}__isnull": True})
        .annotate(raw_token=crypto.stored_token(name))
        .order_by("pk")
    )
    last_pk = None
    while True:
        page = rows if last_pk is None else rows.filter(pk__gt=last_pk)
        batch = list(page.values_list("pk", "raw_token")[:batch_size])
        if not batch:
            return
        yield batch
        last_pk = batch[-1][0]


def _where(model: type[Model], name: str) -> str:
    return f"{model._meta.db_table}.{model._meta.get_field(name).column}"


def check_all(*, batch_size: int = BATCH_SIZE) -> None:
    """Raise RotationError naming the first value no key decrypts; writes nothing."""
    crypto.key_ring()  # a bad FERNET_KEYS fails here, clearly
    for model, name in encrypted_columns():
        for batch in _batches(model, name, batch_size):
            for pk, token in batch:
                # The old keys first: before a rotation, most values are under one of them.
                if crypto.signer(token, old_first=True) is None:
                    raise RotationError(
                        f"Cannot decrypt {_where(model, name)} (row id={pk}) with any key in "
                        "FERNET_KEYS: add the key it was written with (or overwrite or delete "
                        "that row), then run rotate_keys again. Nothing was changed."
                    )


def _rotations(batch: list[tuple[int, str]]) -> tuple[list[tuple[int, str, str]], int]:
    """(pk, token read, new token) of the rows not yet under the first key, and how many
    are; Fernet's work, outside any transaction."""
    todo = []
    current = 0
    for pk, token in batch:
        rotated = crypto.rotated(token)
        if rotated is None:  # written with the first key: nothing to do
            current += 1
        else:
            todo.append((pk, token, rotated))
    return todo, current


def _write(
    model: type[Model], name: str, todo: list[tuple[int, str, str]]
) -> tuple[int, list[tuple[int, str]]]:
    """Write one batch in one short transaction; return (rotated, rows changed meanwhile)."""
    manager = model._base_manager
    database = router.db_for_write(model)
    connection = connections[database]
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(model._meta.get_field(name).column)
    # One statement for the batch (PostgreSQL's triggers then run once, not per row), and
    # only where the row still holds the token we read: never write back an old value.
    if connection.vendor == "postgresql":
        # Three array parameters rather than thousands of placeholders to parse, bound on
        # the server in binary (quoting 6,000 strings as array text cost as much as the
        # statement) by a prepared statement.
        batch = "unnest(%b::bigint[], %b::text[], %b::text[]) AS batch(column1, column2, column3)"
        params = [list(column) for column in zip(*todo, strict=True)]
    else:  # SQLite names the columns of VALUES column1, column2, column3
        batch = "(VALUES " + ", ".join(["(%s, %s, %s)"] * len(todo)) + ") AS batch"
        params = [value for row in todo for value in row]
    update = (
        f"UPDATE {table} SET {column} = batch.column3 FROM {batch} "
        f"WHERE {table}.{quote(model._meta.pk.column)} = batch.column1 "
        f"AND {table}.{column} = batch.column2"
    )
    with transaction.atomic(using=database), statement_cursor(database) as cursor:
        _lock_organizations(model, [pk for pk, _, _ in todo])
        cursor.execute(update, params)
        written = cursor.rowcount
    if written == len(todo):
        return written, []
    # Some rows changed under us: those that do not hold our new token are read again.
    now = dict(
        manager.filter(pk__in=[pk for pk, _, _ in todo], **{f"{name}__isnull": False})
        .annotate(raw_token=crypto.stored_token(name))
        .values_list("pk", "raw_token")
    )
    rotated = sum(1 for pk, _, new in todo if now.get(pk) == new)
    fresh = [(pk, now[pk]) for pk, _, new in todo if pk in now and now[pk] != new]
    return rotated, fresh


@dataclass
class _Outcome:
    rotated: int = 0
    current: int = 0  # found under the first key when read again
    raced: int = 0
    left: list[int] = field(default_factory=list)


def _rotate_rows(model: type[Model], name: str, todo: list[tuple[int, str, str]]) -> _Outcome:
    """Write `todo`; rows an editor changed meanwhile are read, rotated and written again,
    up to MAX_ATTEMPTS writes in all."""
    outcome = _Outcome()
    fresh: list[tuple[int, str]] = []
    for _attempt in range(MAX_ATTEMPTS):
        done, fresh = _write(model, name, todo) if todo else (0, [])
        if todo:
            let_others_write(router.db_for_write(model))
        outcome.rotated += done
        if not fresh:
            return outcome
        outcome.raced += len(fresh)
        todo, current = _rotations(fresh)
        outcome.current += current
    outcome.left = [pk for pk, _ in fresh]
    return outcome


class _Writer:
    """Writes the batches while the next one is read and re-encrypted: one thread, with its
    own database connection, one batch at a time, so that the database's work on a batch
    overlaps Fernet's on the next. Inside a caller's transaction (tests), whose rows another
    connection cannot see, it writes in place."""

    def __init__(self) -> None:
        self.pool = None if connections[DEFAULT_DB_ALIAS].in_atomic_block else _pool()
        self.pending: tuple[Future, Callable[[_Outcome], None]] | None = None

    def submit(self, work: Callable[[], _Outcome], done: Callable[[_Outcome], None]) -> None:
        if self.pool is None:
            done(work())
            return
        self.wait()
        self.pending = (self.pool.submit(work), done)

    def wait(self) -> None:
        if self.pending is not None:
            (future, done), self.pending = self.pending, None
            done(future.result())

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.submit(connections.close_all).result()
                self.pool.shutdown()


def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="rotate-keys-writer")


def _lock_organizations(model: type[Model], pks: list[int]) -> None:
    """Lock the organizations of these definitions (FOR NO KEY UPDATE, in id order) before
    writing them, as apply_config and import_env do. The generation triggers update the
    organization after the rows: an UPDATE holding rows of an organization whose row an
    apply holds, while the apply waits for those rows, would deadlock."""
    path = ORGANIZATION_PATH.get(model)
    if path is None:  # history tables: no triggers, no organization to wait for
        return
    owners = model._base_manager.filter(pk__in=pks).values(path)
    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(pk__in=owners)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def rotate_all(*, batch_size: int = BATCH_SIZE) -> RotationReport:
    """Re-encrypt with the first key every value that is not already, batch by batch.

    Raises RotationError, having changed nothing, when a running app server lacks the first
    key or some value cannot be decrypted.
    """
    crypto.key_ring()  # fails early, and clearly, on a bad FERNET_KEYS
    check_servers()
    check_all(batch_size=batch_size)
    report = RotationReport()
    writer = _Writer()
    try:
        for model, name in encrypted_columns():
            where = _where(model, name)

            def done(outcome: _Outcome, where: str = where) -> None:
                if outcome.rotated:
                    report.rotated[where] = report.rotated.get(where, 0) + outcome.rotated
                report.current += outcome.current
                report.raced += outcome.raced
                report.left += [f"{where} (row id={pk})" for pk in outcome.left]

            for batch in _batches(model, name, batch_size):
                todo, current = _rotations(batch)
                report.current += current
                writer.submit(partial(_rotate_rows, model, name, todo), done)
    finally:
        writer.close()
    return report
