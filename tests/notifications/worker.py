"""The task worker in the test's own process and transaction: django-tasks-db's Worker runs
each ready task (its run_task, the very code db_worker runs) after the claim db_worker makes.
Worker.run itself is not used here: it closes the connection between tasks, which would end
the test's transaction. A task's own after-commit callbacks (the deliveries a fan-out
enqueues) run when the task ends, as they do in the worker, whose tasks commit. The worker as
a process is tested in test_worker_process.py."""

from __future__ import annotations

import time

from django.db import transaction
from django.test import TestCase
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

WORKER = Worker(
    queue_names=["default"],
    interval=0,
    batch=True,
    backend_name="default",
    startup_delay=False,
    max_tasks=None,
    worker_id="in-test",
    excluded_queue_names=[],
)


def run_ready() -> int:
    """Run every task that is ready now (and those they enqueue, when ready now); returns
    how many ran."""
    ran = 0
    while True:
        with transaction.atomic():
            task_result = DBTaskResult.objects.ready().get_locked()
            if task_result is not None:
                task_result.claim(WORKER.worker_id)
        if task_result is None:
            return ran
        with TestCase.captureOnCommitCallbacks(execute=True):
            WORKER.run_task(task_result)
        ran += 1


def run_until(done, *, timeout: float = 10.0) -> None:  # noqa: ANN001 - a predicate
    """Run tasks as they become ready (retries wait for their run_after) until done()."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the tasks did not get there in time")
        if not run_ready():
            time.sleep(0.05)


def failures() -> list[str]:
    """The tracebacks of tasks that raised: a test ends with none unless it expects one."""
    return list(DBTaskResult.objects.failed().values_list("traceback", flat=True))
