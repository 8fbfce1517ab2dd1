"""Webhook deliveries of notifications (SPEC "Webhooks"), made by the worker.

- `fan_out(notification)`: one WebhookDelivery per enabled endpoint subscribed to the
  notification's type, written in one transaction with the notification's `dispatched_at`,
  each enqueued (`tasks.deliver`) after that commit.
- `deliver(delivery)`: claims the delivery (a short transaction: the row locked with
  `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite's single writer elsewhere, then a
  lease and an attempt row written), POSTs it outside any transaction (orgenv.notifications
  .sending), and records the answer: a 2xx delivers; 410 disables the endpoint; anything
  else is due again after a backoff (or Retry-After), until WEBHOOK_RETRY_HOURS have passed.
  A worker killed in the middle leaves the lease to run out: `recover` enqueues the delivery
  again and the next attempt marks the lost one interrupted. Receivers drop duplicates by
  `webhook-id`, the same on every attempt.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from . import events, sending
from .models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .retrying import CAP, backoff

logger = logging.getLogger("orgenv.notifications")

Status = WebhookDelivery.Status


def retry_window() -> timedelta:
    """For how long a failed delivery (or notification mail) is tried again."""
    return timedelta(hours=settings.WEBHOOK_RETRY_HOURS)


def retry_base() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS)


def lease() -> timedelta:
    """How long a worker holds a delivery it started: the attempt's own limit twice over,
    and a margin for resolving the name and writing the answer."""
    return timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT + 5)


def _enqueue(delivery_id: int, run_after: datetime | None = None) -> None:
    from .tasks import deliver

    task = deliver.using(run_after=run_after) if run_after is not None else deliver
    try:
        task.enqueue(delivery_id)
    except Exception:  # the queue unreachable: recover() enqueues it once it is overdue
        logger.exception("webhook delivery %s: enqueue failed; recovery will retry", delivery_id)


def enqueue_after_commit(delivery_ids: list[int]) -> None:
    transaction.on_commit(lambda: [_enqueue(pk) for pk in delivery_ids], robust=True)


def fan_out(notification_id: int) -> None:
    """Make the deliveries of a notification to the endpoints subscribed to its type."""
    with transaction.atomic():
        now = timezone.now()
        claimed = Notification.objects.filter(
            pk=notification_id, dispatched_at__isnull=True
        ).update(dispatched_at=now)
        if not claimed:
            return
        notification = Notification.objects.get(pk=notification_id)
        complete(notification)
        if notification.type not in events.WEBHOOK_EVENTS:
            return
        # An organization has few endpoints (at most MAX_ENDPOINTS); their lists of events
        # are matched here rather than with a JSON lookup SQLite lacks. An endpoint added
        # after the event does not get it.
        endpoints = WebhookEndpoint.objects.filter(
            organization_id=notification.organization_id,
            enabled=True,
            created_at__lte=notification.created_at,
        ).only("pk", "events")
        targets = [e.pk for e in endpoints if notification.type in e.events]
        if not targets:
            return
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(notification_id=notification_id, endpoint_id=pk, due_at=now)
                for pk in targets
            ],
            ignore_conflicts=True,
        )
        ids = list(
            WebhookDelivery.objects.filter(notification_id=notification_id).values_list(
                "pk", flat=True
            )
        )
        enqueue_after_commit(ids)


def complete(notification: Notification) -> None:
    """Add what a change left to the worker (orgenv.notifications.changes): the projects the
    group reaches and the organization's version, read here rather than in the change's
    transaction, whose event then costs it one INSERT."""
    if not notification.about or "version" in notification.data:
        return
    from .changes import completion

    notification.data.update(completion(notification.organization_id, notification.about))
    Notification.objects.filter(pk=notification.pk).update(data=notification.data)


def body(notification: Notification, endpoint: WebhookEndpoint) -> bytes:
    """The request body: Standard Webhooks' `{"type", "timestamp", "data"}`, or a Slack
    incoming-webhook message. Both are made from the notification's data, which never holds
    a value (notify refuses one)."""
    data = notification.data
    if endpoint.format == WebhookEndpoint.Format.SLACK:
        text = events.summary(
            notification.type, notification.actor, data.get("organization", ""), data
        )
        if data.get("url"):
            text += f" <{data['url']}|Open in orgenv>"
        payload: dict[str, Any] = {"text": text}
    else:
        payload = {
            "type": notification.type,
            "timestamp": notification.created_at.isoformat().replace("+00:00", "Z"),
            "data": data,
        }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(
    notification: Notification, endpoint: WebhookEndpoint, payload: bytes, at: datetime
) -> dict[str, str]:
    """Standard Webhooks' headers: the id (the same on every attempt), the attempt's time,
    and one `v1,…` signature per secret in use (two for 24 hours after a rotation)."""
    signatures = [
        Webhook(secret).sign(notification.message_id, at, payload)
        for secret in endpoint.secrets_in_use(at)
    ]
    return {
        "webhook-id": notification.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _claim(delivery_id: int, worker: str) -> tuple[WebhookDelivery, WebhookAttempt] | None:
    """Take the delivery if it is due and nobody holds it; None otherwise (another worker
    has it, it is delivered, or not due yet)."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "notification")
            .filter(pk=delivery_id, due_at__lte=now)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if delivery is None:
            return None
        endpoint = delivery.endpoint
        if not endpoint.enabled and delivery.notification.type != events.WEBHOOK_TEST:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.FAILED, due_at=None, last_error="the endpoint is disabled"
            )
            return None
        # An attempt left unfinished is one whose worker died: say so in the log.
        WebhookAttempt.objects.filter(delivery=delivery, finished_at__isnull=True).update(
            finished_at=now, error="interrupted: the worker stopped before an answer"
        )
        delivery.attempts += 1
        delivery.lease_until = now + lease()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=delivery.attempts, lease_until=delivery.lease_until, status=Status.PENDING
        )
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            endpoint=endpoint,
            number=delivery.attempts,
            worker=worker[:100],
            started_at=now,
        )
    return delivery, attempt


def deliver(delivery_id: int, *, worker: str = "") -> bool | None:
    """Make one attempt of a delivery, if it is due and free; True if delivered, False if
    not (retried later or given up), None if there was nothing to do."""
    claim = _claim(delivery_id, worker)
    if claim is None:
        return None
    delivery, attempt = claim
    notification, endpoint = delivery.notification, delivery.endpoint
    payload = body(notification, endpoint)
    at = timezone.now()
    try:
        answer = sending.post(
            endpoint.url, payload, signed_headers(notification, endpoint, payload, at)
        )
    except sending.Refused as refused:
        answer = sending.Answer(status=None, body="", duration_ms=0, error=f"refused: {refused}")
    _record(delivery, attempt, answer)
    return answer.delivered


def _record(delivery: WebhookDelivery, attempt: WebhookAttempt, answer: sending.Answer) -> None:
    now = timezone.now()
    endpoint = delivery.endpoint
    with transaction.atomic():
        WebhookAttempt.objects.filter(pk=attempt.pk).update(
            finished_at=now,
            duration_ms=answer.duration_ms,
            status_code=answer.status,
            error=answer.error[:300],
            response=answer.body,
            delivered=answer.delivered,
        )
        if answer.delivered:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.DELIVERED,
                due_at=None,
                lease_until=None,
                delivered_at=now,
                last_error="",
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
                failing_since=None
            )
            return
        error = answer.error or f"answered {answer.status}"
        if answer.status == 410:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.FAILED, due_at=None, lease_until=None, last_error=error
            )
            disable(endpoint, reason="the receiver answered 410 Gone")
            return
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        wait = backoff(delivery.attempts, base=retry_base())
        if answer.retry_after is not None:
            wait = min(max(wait, timedelta(seconds=answer.retry_after)), CAP)
        due = now + wait
        if due - delivery.created_at > retry_window():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.FAILED, due_at=None, lease_until=None, last_error=error[:300]
            )
            logger.warning(
                "webhook %s: delivery of %s given up after %d attempts (%s)",
                endpoint.name,
                delivery.notification.message_id,
                delivery.attempts,
                error,
            )
        else:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                due_at=due, lease_until=None, last_error=error[:300]
            )
            transaction.on_commit(lambda: _enqueue(delivery.pk, run_after=due), robust=True)
        disable_if_failing(endpoint.pk, now=now)


def disable(endpoint: WebhookEndpoint, *, reason: str) -> bool:
    """Disable an endpoint the worker gave up on and tell the organization's admins by mail
    (`webhook.disabled`). Call it inside a transaction; False if it was disabled already."""
    from .outbox import notify

    now = timezone.now()
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason[:200]
    )
    if not changed:
        return False
    from django.urls import reverse

    notify(
        events.WEBHOOK_DISABLED,
        organization=endpoint.organization,
        actor="system:webhooks",
        data={"webhook": endpoint.name, "reason": reason, "endpoint_url": endpoint.url},
        link=reverse("admin:orgenv_webhook", args=(endpoint.organization.slug, endpoint.pk)),
        email_to="admins",
    )
    logger.warning("webhook %s disabled: %s", endpoint.name, reason)
    return True


def failing_cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)


def disable_if_failing(endpoint_id: int, *, now: datetime) -> None:
    endpoint = (
        WebhookEndpoint.objects.select_related("organization")
        .filter(pk=endpoint_id, enabled=True, failing_since__lte=failing_cutoff(now))
        .first()
    )
    if endpoint is not None:
        days = settings.WEBHOOK_DISABLE_AFTER_DAYS
        disable(endpoint, reason=f"every delivery failed for {days:g} days")


def disable_failing(now: datetime | None = None) -> int:
    """Disable every endpoint that failed for WEBHOOK_DISABLE_AFTER_DAYS; how many."""
    now = now or timezone.now()
    ids = list(
        WebhookEndpoint.objects.filter(
            enabled=True, failing_since__lte=failing_cutoff(now)
        ).values_list("pk", flat=True)
    )
    for pk in ids:
        with transaction.atomic():
            disable_if_failing(pk, now=now)
    return len(ids)


def recover(*, stale: datetime, limit: int) -> int:
    """Enqueue again the deliveries due before `stale` that no worker holds (their task was
    lost, or their worker killed and its lease run out); how many."""
    now = timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(due_at__lt=stale)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        _enqueue(pk)
    return len(ids)


def owed() -> Q:
    """Notifications with a delivery still to make (never pruned)."""
    return Q(
        Exists(WebhookDelivery.objects.filter(notification=OuterRef("pk"), due_at__isnull=False))
    )
