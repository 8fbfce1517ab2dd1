"""Background work: Django's tasks framework (the django-tasks backport; `django.tasks` from
Django 6 on, a settings change), run by `python manage.py db_worker`.

Tasks are written with `django_tasks.task` next to what they serve (orgenv.notifications
.tasks) and enqueued after the commit of the change that needs them. The backport retries
nothing by itself: what must survive a lost task keeps its own state in a row of ours (an
outbox row, a delivery with its attempts), and a periodic task enqueues again whatever waited
too long.

Periodic tasks are named in the setting ORGENV_PERIODIC_TASKS (dotted path of a task → seconds
between runs). `run_due()` enqueues each one whose time has come, once across every process:
the claim is one conditional UPDATE of its PeriodicRun row, which only one process can win.
Every db_worker calls it from a scheduler thread every PERIODIC_TICK_SECONDS (orgenv's
db_worker command), and `python manage.py run_periodic` calls it once, for cron or a systemd
timer where the workers are not db_workers (the RQ backend).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from orgenv.models import PeriodicRun

logger = logging.getLogger("orgenv.background")


def run_due() -> list[str]:
    """Enqueue every periodic task that is due and that no other process claimed first;
    returns the paths enqueued."""
    enqueued = []
    now = timezone.now()
    for path, seconds in settings.ORGENV_PERIODIC_TASKS.items():
        if _claim(path, now, timedelta(seconds=seconds)):
            import_string(path).enqueue()
            enqueued.append(path)
    return enqueued


def _claim(name: str, now: object, every: timedelta) -> bool:
    claimed = PeriodicRun.objects.filter(name=name, due_at__lte=now).update(
        due_at=now + every, last_enqueued_at=now
    )
    if claimed:
        return True
    if PeriodicRun.objects.filter(name=name).exists():
        return False
    try:
        with transaction.atomic():
            PeriodicRun.objects.create(name=name, due_at=now + every, last_enqueued_at=now)
    except IntegrityError:  # another process created it (and enqueued) first
        return False
    return True


class Scheduler(threading.Thread):
    """A db_worker's scheduler: `run_due()` every PERIODIC_TICK_SECONDS, in a daemon thread
    (it ends with the worker). The tasks it enqueues run in the worker's loop like any other."""

    def __init__(self) -> None:
        super().__init__(name="orgenv-periodic", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                for path in run_due():
                    logger.info("enqueued periodic task %s", path)
            except Exception:  # a database hiccup must not end the thread: next tick
                logger.exception("periodic tasks: the check for due tasks failed")
            finally:
                # This thread's own connection: closed between ticks, as after a request.
                close_old_connections()
                connection.close()
            self.stopped.wait(settings.PERIODIC_TICK_SECONDS)
