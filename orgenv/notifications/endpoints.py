"""Webhook endpoints: the writes (HackSoft services: keyword-only, validated, atomic,
audited as `webhook_changed`) that the Webhooks tab and apply_config share."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orgenv.audit.events import record
from orgenv.models import AuditEvent, Organization

from . import events, webhooks
from .models import Notification, WebhookDelivery, WebhookEndpoint, new_signing_secret
from .outbox import actor_label, notify
from .sending import url_problem

# Fan-out reads every endpoint of an organization per event: keep that list short.
MAX_ENDPOINTS = 50
# After a rotation the previous secret signs too, for receivers still holding it.
ROTATION_OVERLAP = timedelta(hours=24)
# A slug, as apply_config names things.
NAME_RULE = re.compile(r"^[-A-Za-z0-9_]{1,64}$")


def validate_secret(secret: str) -> None:
    """A Standard Webhooks secret: `whsec_` then 24 to 64 bytes in base64."""
    if not secret.startswith("whsec_"):
        raise ValidationError("A signing secret starts with whsec_ (then base64).")
    try:
        raw = base64.b64decode(secret[6:], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("A signing secret is whsec_ then base64 text.") from None
    if not 24 <= len(raw) <= 64:
        raise ValidationError("A signing secret holds 24 to 64 bytes (whsec_ then base64).")


def _clean(
    *,
    organization: Organization,
    name: str,
    url: str,
    events_: Iterable[str],
    format_: str,
    pk: int | None = None,
) -> tuple[str, str, list[str], str]:
    errors: dict[str, list[str]] = {}
    name, url = (name or "").strip(), (url or "").strip()
    chosen = list(dict.fromkeys(events_ or ()))
    if not NAME_RULE.match(name):
        errors["name"] = [
            "A name is 1 to 64 letters, digits, dashes or underscores, such as deploy-hook."
        ]
    elif (
        WebhookEndpoint.objects.filter(organization=organization, name=name).exclude(pk=pk).exists()
    ):
        errors["name"] = [f"{organization.slug} already has a webhook named {name}."]
    problem = url_problem(url) if len(url) <= 2000 else "A URL has at most 2000 characters."
    if problem:
        errors["url"] = [problem]
    unknown = [e for e in chosen if e not in events.WEBHOOK_EVENTS]
    if unknown:
        errors["events"] = [
            f"Unknown event {unknown[0]!r}: choose among {', '.join(events.WEBHOOK_EVENTS)}."
        ]
    elif not chosen:
        errors["events"] = ["Choose at least one event to send."]
    if format_ not in WebhookEndpoint.Format.values:
        errors["format"] = ["The format is standard or slack."]
    if errors:
        raise ValidationError(errors)
    # The tab's order, whatever order they were given in.
    return name, url, [e for e in events.WEBHOOK_EVENTS if e in chosen], format_


def _audit(endpoint: WebhookEndpoint, action: str, **detail: object) -> None:
    record(
        AuditEvent.Kind.WEBHOOK_CHANGED,
        organization=endpoint.organization,
        detail={"action": action, "webhook": endpoint.name, **detail},
    )


@transaction.atomic
def endpoint_create(
    *,
    organization: Organization,
    name: str,
    url: str,
    events: Iterable[str],
    format: str = WebhookEndpoint.Format.STANDARD,
    secret: str | None = None,
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint; returns it and its signing secret (generated unless given), which
    is shown once and never again."""
    name, url, chosen, format = _clean(
        organization=organization, name=name, url=url, events_=events, format_=format
    )
    if WebhookEndpoint.objects.filter(organization=organization).count() >= MAX_ENDPOINTS:
        raise ValidationError(
            f"{organization.slug} has {MAX_ENDPOINTS} webhooks, the most an organization may "
            "have: remove one first."
        )
    if secret is not None:
        validate_secret(secret)
    secret = secret or new_signing_secret()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        name=name,
        url=url,
        events=chosen,
        format=format,
        secret=secret,
        enabled=enabled,
        disabled_at=None if enabled else timezone.now(),
        created_by=actor_label(),
    )
    _audit(endpoint, "added", url=url, events=chosen, format=format)
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *, endpoint: WebhookEndpoint, name: str, url: str, events: Iterable[str], format: str
) -> WebhookEndpoint:
    name, url, chosen, format = _clean(
        organization=endpoint.organization,
        name=name,
        url=url,
        events_=events,
        format_=format,
        pk=endpoint.pk,
    )
    changed = {
        key: value
        for key, value in {"name": name, "url": url, "events": chosen, "format": format}.items()
        if getattr(endpoint, key) != value
    }
    if not changed:
        return endpoint
    for key, value in changed.items():
        setattr(endpoint, key, value)
    endpoint.save(update_fields=[*changed, "updated_at"])
    _audit(endpoint, "changed", fields=sorted(changed))
    return endpoint


@transaction.atomic
def endpoint_rotate(*, endpoint: WebhookEndpoint, secret: str | None = None) -> str:
    """A new signing secret; the previous one goes on signing for ROTATION_OVERLAP, so that
    receivers can move to the new one without missing a delivery. Returns the new secret."""
    if secret is not None:
        validate_secret(secret)
    new = secret or new_signing_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = timezone.now() + ROTATION_OVERLAP
    endpoint.secret = new
    endpoint.save(
        update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"]
    )
    _audit(endpoint, "secret rotated")
    return new


@transaction.atomic
def endpoint_set_enabled(*, endpoint: WebhookEndpoint, enabled: bool) -> WebhookEndpoint:
    """Enable or disable by hand. Enabling starts afresh: the failure count restarts."""
    if endpoint.enabled == enabled:
        return endpoint
    endpoint.enabled = enabled
    endpoint.disabled_at = None if enabled else timezone.now()
    endpoint.disabled_reason = "" if enabled else f"disabled by {actor_label()}"
    endpoint.failing_since = None
    endpoint.save(
        update_fields=["enabled", "disabled_at", "disabled_reason", "failing_since", "updated_at"]
    )
    _audit(endpoint, "enabled" if enabled else "disabled")
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    _audit(endpoint, "removed", url=endpoint.url)
    endpoint.delete()


def endpoint_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:orgenv_webhook", args=(endpoint.organization.slug, endpoint.pk))


@transaction.atomic
def endpoint_test(*, endpoint: WebhookEndpoint) -> Notification:
    """A `webhook.test` event to this endpoint alone (also when disabled, or not subscribed
    to webhook.test: it is how an admin checks the receiver)."""
    notification = notify(
        events.WEBHOOK_TEST,
        organization=endpoint.organization,
        data={"webhook": endpoint.name},
        link=endpoint_url(endpoint),
    )
    # Its delivery is made here, to this endpoint only: nothing is left to fan out.
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk).update(dispatched_at=now)
    delivery = WebhookDelivery.objects.create(
        notification=notification, endpoint=endpoint, due_at=now
    )
    webhooks.enqueue_after_commit([delivery.pk])
    return notification


@transaction.atomic
def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, with the same `webhook-id` (receivers that saw it drop
    it), whatever became of it; its retries start afresh."""
    endpoint = delivery.endpoint
    if not endpoint.enabled and delivery.notification.type != events.WEBHOOK_TEST:
        raise ValidationError(f"Webhook {endpoint.name} is disabled: enable it first.")
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.PENDING, due_at=now, created_at=now, last_error=""
    )
    _audit(endpoint, "redelivered", message_id=delivery.notification.message_id)
    webhooks.enqueue_after_commit([delivery.pk])
    delivery.refresh_from_db()
    return delivery
