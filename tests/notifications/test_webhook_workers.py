"""Webhook deliveries by real `python manage.py db_worker` processes: a worker killed with
SIGKILL in the middle of a delivery loses nothing (another one delivers it, with the same
webhook-id), and two workers racing over the same deliveries never make one attempt twice at
once."""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from orgenv.models import Notification, PeriodicRun, WebhookAttempt, WebhookDelivery
from orgenv.notifications import endpoints, events, notify
from orgenv.notifications.tasks import deliver
from orgenv.notifications.webhooks import fan_out
from tests.notifications.processes import start_worker, stop, wait_for
from tests.notifications.receiver import Reply, receiving

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_ENV = {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "NOTIFICATION_RECOVER_AFTER_SECONDS": "0"}


def group_changed(world, n: int = 0):
    with transaction.atomic():
        return notify(
            events.GROUP_CHANGED,
            organization=world.acme,
            actor="alice",
            data={"group": "production", "names": [f"NAME_{n}"]},
        )


def test_a_worker_killed_mid_delivery_loses_nothing(world, settings, tmp_path):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    with receiving(Reply(200, delay=30), Reply(200, b"second")) as receiver:
        endpoints.endpoint_create(
            organization=world.acme, name="deploy", url=receiver.url, events=["group.changed"]
        )
        notification = group_changed(world)
        first = start_worker("w1", tmp_path / "w1.log", **WORKER_ENV, WEBHOOK_TIMEOUT="20")
        try:
            wait_for(lambda: len(receiver.received) == 1, what="the first attempt")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and delivery.lease_until > timezone.now()
        # The lease (twice the timeout, and a margin) runs out: time passes, and recover is
        # due (it runs every minute).
        WebhookDelivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
        PeriodicRun.objects.update(due_at=timezone.now())
        second = start_worker("w2", tmp_path / "w2.log", **WORKER_ENV)
        try:
            wait_for(
                lambda: WebhookDelivery.objects.filter(status="delivered").exists(),
                what="the second worker",
            )
        finally:
            code = stop(second)
    assert code == 0, (tmp_path / "w2.log").read_text()
    assert [r.headers["webhook-id"] for r in receiver.received] == [notification.message_id] * 2
    log = list(WebhookAttempt.objects.order_by("number").values_list("number", "worker", "error"))
    assert log[0][:2] == (1, "w1") and log[0][2].startswith("interrupted")
    assert log[1] == (2, "w2", "")


def test_two_workers_never_make_one_attempt_twice_at_once(world, settings, tmp_path):
    """Every delivery enqueued three times over (as a recovery racing the first task would),
    two workers taking them: each event arrives once, never two at a time."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    count = 12
    with receiving(Reply(200, delay=0.05)) as receiver:
        endpoints.endpoint_create(
            organization=world.acme, name="deploy", url=receiver.url, events=["group.changed"]
        )
        ids = {group_changed(world, n).message_id for n in range(count)}
        for pk in Notification.objects.values_list("pk", flat=True):
            fan_out(pk)  # the deliveries made here, so they can be enqueued again below
        for pk in WebhookDelivery.objects.values_list("pk", flat=True):
            deliver.enqueue(pk)
            deliver.enqueue(pk)
        workers = [start_worker(f"w{i}", tmp_path / f"w{i}.log", **WORKER_ENV) for i in (1, 2)]
        try:
            wait_for(
                lambda: WebhookDelivery.objects.filter(status="delivered").count() == count,
                timeout=60,
                what="the two workers",
            )
            wait_for(lambda: not DBTaskResult.objects.ready().exists(), what="the queue")
        finally:
            codes = [stop(w) for w in workers]
    assert codes == [0, 0]
    seen = Counter(r.headers["webhook-id"] for r in receiver.received)
    assert set(seen) == ids and set(seen.values()) == {1}
    assert receiver.overlaps == []
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    by_worker = Counter(WebhookAttempt.objects.values_list("worker", flat=True))
    assert sum(by_worker.values()) == count
    assert all(json.loads(r.body)["type"] == "group.changed" for r in receiver.received)
