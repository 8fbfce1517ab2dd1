"""A notification as an email: the summary, then the data a line each, then the link. The
data never holds a value (notify refuses it), so neither does the mail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from orgenv import access

from .events import _text, summary
from .models import Notification

# Data keys shown in the mail's first lines (the summary names organization and actor).
_LEAD = ("organization", "actor", "url")


def recipients(notification: Notification) -> list[str]:
    """The addresses mailed, as the users are now: an admin removed meanwhile is not mailed,
    and a user without an address cannot be."""
    from django.contrib.auth import get_user_model

    if notification.email_to is None:
        return []
    if notification.email_to == "admins":
        users = access.organization_admins(notification.organization_id)
    else:
        users = get_user_model().objects.filter(pk__in=notification.email_to, is_active=True)
    return sorted(set(users.exclude(email="").values_list("email", flat=True)))


def message(notification: Notification, to: str) -> EmailMessage:
    data = notification.data
    subject = summary(notification.type, notification.actor, data.get("organization", ""), data)
    lines = [subject, ""]
    for key, item in data.items():
        if key not in _LEAD and item not in (None, "", []):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {_text(item)}")
    if data.get("url"):
        lines += ["", f"Open: {data['url']}"]
    lines += [
        "",
        "-- ",
        f"orgenv ({notification.type}, {notification.message_id}). Values are never sent by email.",
    ]
    return EmailMessage(
        subject=f"[orgenv] {subject}"[:200],
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )


def send(notification: Notification) -> int:
    """Send the notification's mails, one per recipient (no recipient learns the others)
    over one connection; returns how many. Raises on a failure: the caller sends them all
    again later (at least once, as webhooks)."""
    addresses: list[Any] = recipients(notification)
    if not addresses:
        return 0
    with get_connection() as connection:
        return connection.send_messages([message(notification, a) for a in addresses]) or 0
