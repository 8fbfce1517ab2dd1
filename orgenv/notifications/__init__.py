"""Notifications: one path for emails and webhooks (SPEC "Webhooks", "Change requests").

    from orgenv.notifications import events, notify

    with transaction.atomic():          # the change's own transaction
        ...                             # the change
        notify(
            events.GROUP_CHANGED,
            organization=group.organization,
            data={"group": group.name, "names": ["DB_PASSWORD"], "version": 42},
            link=reverse("admin:orgenv_variablegroup_change", args=[group.pk]),
            email_to="admins",          # or users, or None (webhooks only)
        )

`notify` writes one outbox row in the caller's transaction and enqueues its sending after
the commit; the worker (`python manage.py db_worker`) makes the webhook deliveries and sends
the mails. See notify's docstring for every argument, orgenv.notifications.events for the
types, docs/webhooks.md for the receivers' side.
"""

from __future__ import annotations

from . import events
from .outbox import ADMINS, absolute_url, actor_label, notify

__all__ = ["ADMINS", "absolute_url", "actor_label", "events", "notify"]
