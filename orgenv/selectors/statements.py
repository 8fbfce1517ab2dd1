"""A cursor for the few raw statements of the runner's hot path, prepared where it pays.

Django binds parameters on the client for PostgreSQL and disables prepared statements, so
every statement is parsed and planned again: for the token lookup (a three-table join) that
was four fifths of its time (~510 µs against ~120 µs prepared, measured here). The cursor
of `statement_cursor` binds on the server and prepares each statement on its first use on a
connection (psycopg keeps a connection's prepared statements; PostgreSQL drops their plans
when a table changes). SQLite's module caches its compiled statements by itself, so there it
is Django's own cursor.

Either way the statements go through Django's cursor wrapper: execute wrappers, the
translation of driver errors into django.db errors and query logging apply as they do to
any query. Behind a connection pooler in transaction mode, prepared statements need
PgBouncer 1.21 or later (max_prepared_statements set), as psycopg's own prepared ones do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

_prepared_cursor_class: type | None = None


def _prepared_cursor(raw_connection: Any) -> Any:
    global _prepared_cursor_class
    if _prepared_cursor_class is None:
        import psycopg

        class PreparedCursor(psycopg.Cursor):
            """Server-side binding, every statement prepared on its first use."""

            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                kwargs["prepare"] = True
                return super().execute(query, params, **kwargs)

        _prepared_cursor_class = PreparedCursor
    return _prepared_cursor_class(raw_connection)


class _LoggedStatement(CursorDebugWrapper):
    """Query logging (DEBUG, tests) of a prepared statement: the SQL as written, since the
    driver's own text of a prepared statement is not there to read back."""

    def execute(self, sql: str, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


def statement_cursor(using: str = DEFAULT_DB_ALIAS) -> CursorWrapper:
    """A cursor (use it as a context manager) whose statements PostgreSQL prepares once per
    connection. Parameters are `%s`, as everywhere in Django."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _prepared_cursor(connection.connection)
    wrapper = _LoggedStatement if connection.queries_logged else CursorWrapper
    return wrapper(raw, connection)


def unchecked(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Skip Django's health check of a kept connection (with CONN_HEALTH_CHECKS, a `SELECT 1`
    round trip before a request's first query) for the statement about to run; True when it
    was skipped, and the caller then answers a broken connection itself: close it and go on,
    as the health check would have, paid only then."""
    connection = connections[using]
    kept = bool(
        connection.health_check_enabled
        and connection.connection is not None
        and not connection.health_check_done
        and not connection.in_atomic_block
    )
    if kept:
        connection.health_check_done = True
    return kept


def first_read(sql: str, params: list[Any], using: str = DEFAULT_DB_ALIAS) -> tuple | None:
    """The first row of a read that opens a request, without the health check (`unchecked`):
    when the kept connection turns out to be broken, it is closed and the read runs once
    more on a new one."""
    kept = unchecked(using)
    try:
        with statement_cursor(using) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except (OperationalError, InterfaceError):
        if not kept:
            raise
    connections[using].close()
    with statement_cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def per_vendor(build: Callable[..., str]) -> Callable[..., str]:
    """`build(connection, *args)`, made once per database vendor: a statement whose text
    depends only on the vendor (its quoting, its placeholders), not on each call."""
    made: dict[str, str] = {}

    def sql(connection: Any, *args: Any) -> str:
        text = made.get(connection.vendor)
        if text is None:
            text = made[connection.vendor] = build(connection, *args)
        return text

    return sql
