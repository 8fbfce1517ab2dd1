"""The outbox: one Notification row per event, written in the transaction of the change it
reports (orgenv.notifications.notify). What is sent from it (emails, webhook deliveries) is
made after the commit by the worker (orgenv.notifications.tasks)."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

__all__ = ["Notification"]


def new_message_id() -> str:
    """The event's id, sent as `webhook-id` (the same on every retry and redelivery, so that
    a receiver can drop a duplicate): `msg_` and 24 random URL-safe characters."""
    return "msg_" + secrets.token_urlsafe(18)


class Notification(models.Model):
    """An event for the systems and people that care: its type, organization, actor and
    data (names, projects, versions, a link — never a value), and what is still owed:
    the webhook deliveries to make (`dispatched_at` empty) and the emails to send
    (`email_due_at` set)."""

    message_id = models.CharField(max_length=40, unique=True, default=new_message_id)
    organization = models.ForeignKey(
        "orgenv.Organization", on_delete=models.CASCADE, related_name="notifications"
    )
    type = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, help_text="names, projects, versions; never a value")
    # Who is mailed: "admins" (the organization's admins, as they are when the mail goes)
    # or a list of user ids; null: nobody.
    email_to = models.JSONField(null=True, blank=True)
    # Webhook deliveries made (one per subscribed endpoint), or not yet.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Emails: when the next attempt is due (a worker that takes them moves it on by a lease);
    # null once they are sent, given up, or when none are owed.
    email_due_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(dispatched_at__isnull=True),
                name="notification_undispatched",
            ),
            models.Index(
                fields=["email_due_at"],
                condition=models.Q(email_due_at__isnull=False),
                name="notification_email_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
