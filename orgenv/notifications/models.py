"""The outbox: one Notification row per event, written in the transaction of the change it
reports (orgenv.notifications.notify). What is sent from it (emails, webhook deliveries) is
made after the commit by the worker (orgenv.notifications.tasks)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from django.db import models
from django.utils import timezone

from orgenv.crypto import DecryptsLoudly, EncryptedTextField

__all__ = ["Notification", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]


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
    # What a group or project event is about ({"group": id} or {"project": id}), for the
    # worker to complete `data` with (orgenv.notifications.webhooks.complete); never sent.
    about = models.JSONField(null=True, blank=True)
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


def new_signing_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(DecryptsLoudly, models.Model):
    """A receiver of an organization's events (SPEC "Webhooks"): where, which events, in
    which format, and the secret its deliveries are signed with (encrypted at rest, shown
    once). After a rotation the previous secret signs too until `previous_secret_until`."""

    class Format(models.TextChoices):
        STANDARD = "standard", "Standard Webhooks (signed JSON)"
        SLACK = "slack", "Slack incoming webhook"

    organization = models.ForeignKey(
        "orgenv.Organization", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    name = models.CharField(max_length=64)
    url = models.URLField("URL", max_length=2000)
    events = models.JSONField(default=list)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.STANDARD)
    secret = EncryptedTextField()
    previous_secret = EncryptedTextField(null=True, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # The first failed attempt since the last success: FAILING_DAYS later it is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="webhook_endpoint_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def secrets_in_use(self, now: datetime | None = None) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one
        during the 24 hours after a rotation."""
        now = now or timezone.now()
        current = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            current.append(self.previous_secret)
        return current


class WebhookDelivery(models.Model):
    """One notification owed to one endpoint: made at least once, until a 2xx, retried with
    backoff for WEBHOOK_RETRY_HOURS. `due_at` is when the next attempt may start (null: none
    owed); a worker that starts one holds it until `lease_until`, after which it counts as
    lost (the worker was killed) and another worker may take it."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "endpoint"], name="webhook_delivery_once_per_endpoint"
            )
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(due_at__isnull=False),
                name="webhook_delivery_due",
            )
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.notification_id} to {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One try of a delivery, as the delivery log shows it: when, how long, the answer's
    status and its first KB, or what went wrong before there was one. An attempt whose
    worker was killed stays `finished_at` empty (shown as interrupted)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    # Kept here as well so that an endpoint's log is one index range.
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    response = models.TextField(blank=True, help_text="the first 1 KB of the answer")
    delivered = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-started_at", "-id"], name="webhook_attempt_log")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
