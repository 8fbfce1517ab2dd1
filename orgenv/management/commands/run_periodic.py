"""`python manage.py run_periodic`: enqueue orgenv's periodic tasks that are due, once
(orgenv.background). Every db_worker does this by itself; run this from cron or a systemd
timer, every minute, where the workers are not db_workers (TASKS_BACKEND=rq)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from orgenv.background import run_due


class Command(BaseCommand):
    help = "Enqueue the periodic tasks (ORGENV_PERIODIC_TASKS) that are due."

    def handle(self, *args: Any, **options: Any) -> None:
        enqueued = run_due()
        for path in enqueued:
            self.stdout.write(f"enqueued {path}")
        if not enqueued:
            self.stdout.write("no periodic task is due")
