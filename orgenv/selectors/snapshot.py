"""One snapshot for reads that must agree with each other.

A resolution reads the groups (priorities, grants) and then their definitions. In
autocommit each statement sees the database as it is when the statement starts, so a change
committed between the two gives an environment that never existed (a wrong conflict
winner). Inside `one_snapshot()` every statement sees the same moment:

- PostgreSQL: a REPEATABLE READ, READ ONLY transaction (its snapshot is taken at the first
  query; it takes no locks and never waits for writers);
- SQLite: a DEFERRED transaction, which in WAL mode reads one snapshot without taking the
  write lock (Django's own transactions on SQLite are IMMEDIATE here, see settings, and would
  queue every resolution behind every writer).

Inside a transaction the caller opened, the caller's transaction decides what is seen.
Nothing may write inside the block: Django does not know about this transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

_BEGIN = {
    "postgresql": "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    "sqlite": "BEGIN DEFERRED",
}


@contextlib.contextmanager
def one_snapshot(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the reads of the block in one snapshot of the database; for reads only.

    Two statements more than autocommit (BEGIN …, COMMIT), issued directly rather than
    through transaction.atomic(), whose BEGIN on SQLite is IMMEDIATE and which on
    PostgreSQL would need a third (SET TRANSACTION)."""
    connection = connections[using]
    begin = _BEGIN.get(connection.vendor)
    if connection.in_atomic_block or begin is None:
        yield  # the caller's transaction decides what is seen
        return
    with connection.cursor() as cursor:
        cursor.execute(begin)
    try:
        yield
    except BaseException:
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("ROLLBACK")
        raise
    with connection.cursor() as cursor:
        cursor.execute("COMMIT")
