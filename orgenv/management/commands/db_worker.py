"""`python manage.py db_worker`: django-tasks-db's worker, which also enqueues orgenv's
periodic tasks when they are due (orgenv.background), so that running workers is all an
installation has to do. `--no-periodic` leaves that to `run_periodic` (cron)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import CommandParser
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from orgenv.background import Scheduler


class Command(db_worker.Command):
    help = (
        "Run a database background worker; it also enqueues orgenv's periodic tasks "
        "(ORGENV_PERIODIC_TASKS) when they are due."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-periodic",
            action="store_false",
            dest="periodic",
            help="do not enqueue the periodic tasks from this worker (run_periodic does)",
        )

    def handle(self, *args: Any, periodic: bool = True, **options: Any) -> None:
        # With --reload the parent process only watches files and restarts the child: the
        # scheduler belongs to the process that runs tasks.
        watching = options.get("reload") and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        if periodic and not options.get("batch") and not watching:
            Scheduler().start()
        super().handle(*args, **options)
