"""notify(): one outbox row in the transaction of the change, its sending after the commit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from django.conf import settings
from django.db import transaction

from . import events
from .models import Notification

ADMINS = "admins"


def notify(
    event_type: str,
    *,
    organization: Any,
    data: Mapping[str, Any],
    actor: Any = None,
    link: str | None = None,
    email_to: Literal["admins"] | Iterable[Any] | None = None,
    about: Mapping[str, int] | None = None,
) -> Notification:
    """Record that something happened in `organization`, for its webhooks and by email.

    Call it inside the transaction of the change it reports (a service's
    `@transaction.atomic`, the admin's save): it writes ONE row, the outbox row, in that
    transaction — a change rolled back notifies nobody, a change committed is never lost —
    and enqueues its sending after the commit (orgenv.notifications.tasks.dispatch). One
    change is one call, however many rows it wrote: pass every name it touched at once.

    - `event_type`: one of orgenv.notifications.events (a SPEC "Webhooks" event such as
      `events.GROUP_CHANGED`; webhook endpoints subscribed to it get it); a type outside
      `events.WEBHOOK_EVENTS` is mailed only. Its email summary is `events.SUMMARIES`.
    - `data`: what the receivers read: `group` / `project` / `token` (names), `names` (the
      variable names concerned), `projects_affected` (use `affected_projects()`), `version`,
      and any other plain JSON. NEVER a value, public or secret: keys such as `value` are
      refused, and the tests search every payload for the values they set.
    - `actor`: a user, a label (`alice`, `system:apply_config`), or None for whoever
      orgenv.actors says is acting (the signed-in user of the request, a command's actor).
    - `link`: a path (`/admin/orgenv/variablegroup/3/change/`), made absolute with
      SITE_URL (else the current request's address); sent as `url`.
    - `email_to`: `"admins"` (the organization's admins, as they are when the mail goes),
      users (or their ids), or None (webhooks only). Mail goes through EMAIL_URL after the
      commit, from the worker; it holds the summary, the names and the link, never a value.
      Without EMAIL_URL no mail is sent.

    - `about`: for orgenv.notifications.changes only: the group or project whose reach and
      version the worker adds to `data` before sending.

    Returns the Notification (its `message_id` is the webhooks' `webhook-id`).
    """
    if event_type not in events.TYPES:
        raise ValueError(f"notify: unknown event type {event_type!r} (orgenv.notifications.events)")
    forbidden = events.FORBIDDEN_KEYS.intersection(data)
    if forbidden:
        raise ValueError(
            f"notify: data must never carry a value; remove {', '.join(sorted(forbidden))}."
        )
    body = {"organization": organization.slug, "actor": actor_label(actor), **data}
    if link is not None:
        body["url"] = absolute_url(link)
    json.dumps(body)  # plain JSON only: fail here, in the change, not in the worker
    notification = Notification(
        organization=organization,
        type=event_type,
        actor=body["actor"],
        data=body,
        email_to=_recipients(email_to),
        about=dict(about) if about else None,
    )
    if notification.email_to is not None and settings.EMAIL_URL:
        notification.email_due_at = notification.created_at
    notification.save(force_insert=True)
    transaction.on_commit(lambda: _enqueue(notification.pk), robust=True)
    return notification


def _enqueue(notification_id: int) -> None:
    from .tasks import dispatch

    # If this fails (the queue unreachable), the periodic recovery enqueues it later.
    dispatch.enqueue(notification_id)


def _recipients(email_to: Any) -> str | list[int] | None:
    if email_to is None:
        return None
    if email_to == ADMINS:
        return ADMINS
    ids = sorted({getattr(user, "pk", user) for user in email_to})
    if not all(isinstance(pk, int) for pk in ids):
        raise ValueError('notify: email_to takes "admins", users or user ids.')
    return ids or None


def actor_label(actor: Any = None) -> str:
    """Who acted, as history and audit name them: a username, `token:<prefix>`,
    `system:<command>`."""
    if isinstance(actor, str):
        return actor
    if actor is not None:
        return actor.get_username()
    from orgenv.actors import current_actor, current_request

    current = current_actor()
    if current is not None:
        return current.label
    user = getattr(current_request(), "user", None)
    if user is not None and user.is_authenticated:
        return user.get_username()
    return "system"


def absolute_url(path: str) -> str:
    if path.startswith(("https://", "http://")):
        return path
    base = settings.SITE_URL
    if not base:
        from orgenv.actors import current_request

        request = current_request()
        base = request.build_absolute_uri("/").rstrip("/") if request else ""
    return (base or "http://127.0.0.1:8000") + path
