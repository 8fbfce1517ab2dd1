"""Writing many rows without holding the write lock long: rows updated with their own values
in one statement per batch (`UPDATE … FROM` a list of values) or inserted likewise, for the
bulk writers of orgenv.services.definitions, and a pause between the batches of long jobs
(pruning, rotation) on SQLite.

Django's `bulk_update` writes a CASE per column with a branch per row: for a few thousand
rows that is seconds of Python building expressions, spent while the write lock is held, and
a statement the database evaluates in time quadratic in the batch. Here each batch is one
list of values (one array parameter per column on PostgreSQL rather than thousands of
placeholders) joined on the rows it matches; PostgreSQL's statement-level triggers run once
per batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model

# SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps between
# tries (Python's sqlite3: up to 100 ms a try). A loop of short transactions that begins its
# next batch as soon as the last one commits keeps the lock nearly all the time, and a
# resolution waiting to write its access event may keep missing the gaps.
SQLITE_PAUSE = 0.15
# A pause after every batch would spend more time pausing than rotating; one pause whenever
# the job has held the lock (its batches back to back) this long since the last bounds a
# waiting writer's wait to about this plus one batch.
SQLITE_WORK = 0.6
_resumed = 0.0  # time.monotonic() at the end of the last pause


def let_others_write(using: str) -> None:
    """Between two batches of a long job (pruning, rotation): on SQLite, once the job has
    worked SQLITE_WORK since its last pause, leave the write lock free for longer than a
    waiting writer sleeps, so that it gets its turn."""
    global _resumed
    if connections[using].vendor == "sqlite" and time.monotonic() - _resumed >= SQLITE_WORK:
        time.sleep(SQLITE_PAUSE)
        _resumed = time.monotonic()


def rows_update(
    model: type[Model],
    *,
    match: Sequence[str],
    assign: Sequence[str],
    rows: Sequence[Sequence[Any]],
    batch_size: int = 2000,
) -> int:
    """For each row (the values of the `match` fields, then of the `assign` fields, as the
    model holds them: an encrypted field takes a crypto.Ciphertext), set the `assign`
    columns of the table's rows whose `match` columns hold those values. Runs in the
    caller's transaction; returns how many rows were updated."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in (*match, *assign)]
    columns = [f"column{position}" for position in range(1, len(fields) + 1)]
    table = quote(model._meta.db_table)
    pairs = list(zip(fields, columns, strict=True))
    keys, values = pairs[: len(match)], pairs[len(match) :]
    assignments = ", ".join(f"{quote(f.column)} = batch.{c}" for f, c in values)
    conditions = " AND ".join(f"{table}.{quote(f.column)} = batch.{c}" for f, c in keys)
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            batch = [
                [f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)]
                for row in rows[start : start + batch_size]
            ]
            if connection.vendor == "postgresql":
                arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
                source = f"unnest({arrays}) AS batch({', '.join(columns)})"
                params = [list(column) for column in zip(*batch, strict=True)]
            else:  # SQLite names the columns of VALUES column1, column2, …
                row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
                source = f"(VALUES {', '.join([row_marks] * len(batch))}) AS batch"
                params = [value for row in batch for value in row]
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {source} WHERE {conditions}", params
            )
            written += cursor.rowcount
    return written


def rows_insert(
    model: type[Model],
    *,
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    batch_size: int = 500,
) -> None:
    """INSERT the rows (the values of `fields`, as the model holds them) in one statement
    per batch, for rows nobody reads back: no instances, no returned ids, no signals."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    model_fields = [model._meta.get_field(name) for name in fields]
    columns = ", ".join(quote(f.column) for f in model_fields)
    row_marks = "(" + ", ".join(["%s"] * len(model_fields)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            params = [
                f.get_db_prep_save(v, connection)
                for row in batch
                for f, v in zip(model_fields, row, strict=True)
            ]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
                f"VALUES {', '.join([row_marks] * len(batch))}",
                params,
            )
