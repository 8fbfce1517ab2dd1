"""The worker's side of notifications (run by `python manage.py db_worker`).

- `dispatch(id)`, enqueued after the commit of the change: makes the webhook deliveries of a
  notification (one per subscribed endpoint, orgenv.notifications.webhooks) and sends its
  emails. Each part is claimed before it is done, so two dispatches of one notification
  (the normal one and a recovery) never do a part twice at once.
- `deliver(id)`: one attempt of one webhook delivery (orgenv.notifications.webhooks), enqueued
  after the fan-out's commit and, for a retry, with `run_after` its next time.
- `recover()`, periodic: enqueues again what waited too long (its task was lost with a
  killed worker, or its enqueue after the commit failed).
- `prune()`, periodic: deletes what is done and older than NOTIFICATION_RETENTION_DAYS.
- `disable_failing()`, periodic: disables the endpoints failing for WEBHOOK_DISABLE_AFTER_DAYS
  and mails their admins.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tasks import TaskContext, task

from orgenv.services.bulk import let_others_write

from . import email, webhooks
from .models import Notification
from .retrying import backoff

logger = logging.getLogger("orgenv.notifications")

# How long a worker holds the emails of a notification it is sending: past this, another
# worker may send them (the first one died).
EMAIL_LEASE = timedelta(minutes=5)
RECOVER_BATCH = 1000
PRUNE_BATCH = 1000


@task()
def dispatch(notification_id: int) -> None:
    """Make the notification's webhook deliveries, then send its emails."""
    webhooks.fan_out(notification_id)
    _send_emails(notification_id)


@task(takes_context=True)
def deliver(context: TaskContext, delivery_id: int) -> bool | None:
    """One attempt of a webhook delivery, if it is still due and no other worker holds it."""
    worker = (context.task_result.worker_ids or [""])[-1]
    return webhooks.deliver(delivery_id, worker=worker)


@task()
def disable_failing() -> int:
    """Disable the endpoints every delivery of which failed for WEBHOOK_DISABLE_AFTER_DAYS."""
    return webhooks.disable_failing()


def _send_emails(notification_id: int) -> None:
    now = timezone.now()
    # The claim: only the worker whose UPDATE moves the due time on sends.
    claimed = Notification.objects.filter(pk=notification_id, email_due_at__lte=now).update(
        email_due_at=now + EMAIL_LEASE, email_attempts=F("email_attempts") + 1
    )
    if not claimed:
        return
    notification = Notification.objects.select_related("organization").get(pk=notification_id)
    try:
        sent = email.send(notification)
    except Exception as error:  # SMTP down, refused, timed out: try again later
        _email_failed(notification, error)
        return
    Notification.objects.filter(pk=notification_id).update(
        email_due_at=None, emailed_at=timezone.now()
    )
    logger.info("notification %s: %d email(s) sent", notification.message_id, sent)


def _email_failed(notification: Notification, error: Exception) -> None:
    now = timezone.now()
    if now - notification.created_at > webhooks.retry_window():
        Notification.objects.filter(pk=notification.pk).update(email_due_at=None)
        logger.error(
            "notification %s: emails given up after %d attempts (%s)",
            notification.message_id,
            notification.email_attempts,
            type(error).__name__,
        )
        return
    due = now + backoff(notification.email_attempts, base=webhooks.retry_base())
    Notification.objects.filter(pk=notification.pk).update(email_due_at=due)
    logger.warning(
        "notification %s: emails not sent (%s: %s); next try at %s",
        notification.message_id,
        type(error).__name__,
        error,
        due.isoformat(timespec="seconds"),
    )
    dispatch.using(run_after=due).enqueue(notification.pk)


@task()
def recover() -> dict[str, int]:
    """Enqueue again every outbox row that waited NOTIFICATION_RECOVER_AFTER_SECONDS past its
    time (within the retry window): notifications not dispatched, emails due, and webhook
    deliveries due whose lease has run out (orgenv.notifications.webhooks)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_RECOVER_AFTER_SECONDS)
    oldest = now - webhooks.retry_window()
    ids = list(
        Notification.objects.filter(
            Q(dispatched_at__isnull=True, created_at__lt=stale) | Q(email_due_at__lt=stale),
            created_at__gte=oldest,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:RECOVER_BATCH]
    )
    for pk in ids:
        dispatch.enqueue(pk)
    deliveries = webhooks.recover(stale=stale, limit=RECOVER_BATCH)
    if ids or deliveries:
        logger.info("recovered %d notification(s) and %d delivery(ies)", len(ids), deliveries)
    return {"notifications": len(ids), "deliveries": deliveries}


@task()
def prune() -> dict[str, int]:
    """Delete the notifications (and their delivery logs) older than
    NOTIFICATION_RETENTION_DAYS whose every part is done, and the task queue's finished
    results as old, in batches of short transactions."""
    cutoff = timezone.now() - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    done = Notification.objects.filter(
        created_at__lt=cutoff, dispatched_at__isnull=False, email_due_at__isnull=True
    ).exclude(webhooks.owed())
    notifications = _delete_in_batches(done)
    tasks = 0
    if "django_tasks_db" in settings.INSTALLED_APPS and settings.TASKS_BACKEND == "database":
        from django_tasks_db.models import DBTaskResult

        # Finished results, and the ones a killed worker left "running" for ever (their
        # work was recovered long ago: a lease lasts minutes).
        old = DBTaskResult.objects.filter(
            Q(finished_at__lt=cutoff) | Q(status="RUNNING", started_at__lt=cutoff)
        )
        tasks = _delete_in_batches(old)
    return {"notifications": notifications, "task_results": tasks}


def _delete_in_batches(queryset) -> int:  # noqa: ANN001 - any model's queryset
    deleted = 0
    while True:
        batch = list(queryset.order_by("pk").values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        with transaction.atomic():
            queryset.model._default_manager.filter(pk__in=batch).delete()
        deleted += len(batch)
        let_others_write(queryset.db)
