"""Deterministic interleavings: pause one connection between two of its statements and let
another connection (another thread) commit something in that gap.

    with between_statements(lambda sql: "FROM \"orgenv_variable\"" in sql, edit):
        rotate()

runs `edit` in a thread of its own (its own database connection) right after each statement of
the current connection that matches, and waits for it before the next statement. Tests that use
it need `transactional_db`: the other connection only sees committed rows.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import connection, connections


@dataclass
class Interleaving:
    runs: int = 0
    seconds: list[float] = field(default_factory=list)  # how long each run of the other side took
    errors: list[BaseException] = field(default_factory=list)


def in_other_connection(action: Callable[[], object], *, timeout: float = 60) -> float:
    """Run `action` in another thread, hence on another database connection; re-raise what
    it raised; return how long it took."""
    outcome: list[object] = []

    def target() -> None:
        started = time.monotonic()
        try:
            action()
            outcome.append(time.monotonic() - started)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"the other connection did not finish within {timeout} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]  # type: ignore[return-value]


@contextlib.contextmanager
def between_statements(
    matches: Callable[[str], bool], action: Callable[[], object], *, times: int | None = None
) -> Iterator[Interleaving]:
    """After each statement of this connection that `matches` (at most `times` of them),
    run `action` on another connection before going on."""
    record = Interleaving()

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        result = execute(sql, params, many, context)
        if matches(sql) and (times is None or record.runs < times):
            record.runs += 1
            try:
                record.seconds.append(in_other_connection(action))
            except BaseException as exc:  # noqa: BLE001 - the test asserts on it
                record.errors.append(exc)
        return result

    with connection.execute_wrapper(wrapper):
        yield record
