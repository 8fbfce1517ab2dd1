"""`python manage.py db_worker` as make run and production run it: a process that sends
what the web process committed, enqueues the periodic tasks, and stops on SIGTERM."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from orgenv.background import run_due
from orgenv.models import Notification, PeriodicRun
from orgenv.notifications import events, notify
from tests.notifications.processes import start_worker, stop, wait_for


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_mails_a_committed_change_and_runs_the_periodic_tasks(
    world, settings, tmp_path
):
    settings.EMAIL_URL = "consolemail://"
    world.alice.email = "alice@acme.example"
    world.alice.save()
    with transaction.atomic():
        notification = notify(
            events.GROUP_DELETED,
            organization=world.acme,
            actor="alice",
            data={"group": "old-stuff", "names": ["A", "B"]},
            email_to="admins",
        )
    log = tmp_path / "worker.log"
    worker = start_worker("w1", log)
    try:
        wait_for(lambda: Notification.objects.get(pk=notification.pk).emailed_at is not None)
        # Its scheduler enqueued the periodic tasks, and the worker ran them.
        wait_for(lambda: PeriodicRun.objects.count() == len(settings.ORGENV_PERIODIC_TASKS))
        wait_for(
            lambda: (
                DBTaskResult.objects.filter(task_path__endswith=".recover").successful().exists()
            )
        )
    finally:
        code = stop(worker)
    output = log.read_text()
    assert "Subject: [orgenv] acme: alice deleted group old-stuff" in output
    assert "To: alice@acme.example" in output
    assert code == 0, output


def test_a_periodic_task_is_enqueued_once_however_many_look(db, settings):
    settings.ORGENV_PERIODIC_TASKS = {"orgenv.notifications.tasks.recover": 60}
    assert run_due() == ["orgenv.notifications.tasks.recover"]
    assert run_due() == [], "claimed until its next time"
    assert DBTaskResult.objects.count() == 1
    PeriodicRun.objects.update(due_at=PeriodicRun.objects.get().due_at.replace(year=2000))
    assert run_due() == ["orgenv.notifications.tasks.recover"]


def test_run_periodic_says_what_it_enqueued(db, capsys):
    call_command("run_periodic")
    assert "enqueued orgenv.notifications.tasks.recover" in capsys.readouterr().out
    call_command("run_periodic")
    assert "no periodic task is due" in capsys.readouterr().out
