"""Webhook deliveries of notifications. Endpoints arrive with the Webhooks tab; until then a
notification has no delivery to make."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from .models import Notification


def fan_out(notification_id: int) -> None:
    """Make the deliveries of a notification to the endpoints subscribed to its type."""
    Notification.objects.filter(pk=notification_id, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now()
    )


def recover(*, stale: datetime, limit: int) -> int:
    """Enqueue again the deliveries due before `stale` whose worker is gone; how many."""
    return 0


def owed() -> Q:
    """Notifications with a delivery still to make (never pruned)."""
    return Q(pk__in=[])
