"""The kinds of notification (SPEC "Webhooks" names the webhook events) and the one-line
summary each gets in an email or a Slack message. Pure: no Django import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP_CHANGED = "group.changed"
GROUP_DELETED = "group.deleted"
PROJECT_CHANGED = "project.changed"
TOKEN_CREATED = "token.created"
TOKEN_REVOKED = "token.revoked"
SECRET_REVEALED = "secret.revealed"
CHANGE_REQUEST_OPENED = "change_request.opened"
CHANGE_REQUEST_APPROVED = "change_request.approved"
CHANGE_REQUEST_REJECTED = "change_request.rejected"
CHANGE_FORCED = "change.forced"
IDENTITY_REFUSED = "identity.refused"
WEBHOOK_TEST = "webhook.test"
# Mailed to the organization's admins only; no endpoint subscribes to it.
WEBHOOK_DISABLED = "webhook.disabled"
# Mailed to the request's author only.
CHANGE_REQUEST_EXPIRED = "change_request.expired"

# What an endpoint may subscribe to, in the order the Webhooks tab lists them.
WEBHOOK_EVENTS = (
    GROUP_CHANGED,
    GROUP_DELETED,
    PROJECT_CHANGED,
    TOKEN_CREATED,
    TOKEN_REVOKED,
    SECRET_REVEALED,
    CHANGE_REQUEST_OPENED,
    CHANGE_REQUEST_APPROVED,
    CHANGE_REQUEST_REJECTED,
    CHANGE_FORCED,
    IDENTITY_REFUSED,
    WEBHOOK_TEST,
)
TYPES = (*WEBHOOK_EVENTS, WEBHOOK_DISABLED, CHANGE_REQUEST_EXPIRED)

# {placeholders} name keys of the notification's data; a missing key reads "?".
SUMMARIES = {
    GROUP_CHANGED: "{actor} changed group {group}",
    GROUP_DELETED: "{actor} deleted group {group}",
    PROJECT_CHANGED: "{actor} changed project {project}",
    TOKEN_CREATED: "{actor} created token {token} of project {project}",
    TOKEN_REVOKED: "{actor} revoked token {token} of project {project}",
    SECRET_REVEALED: "{actor} revealed {names} of project {project}",
    CHANGE_REQUEST_OPENED: "{actor} opened a change request for group {group}",
    CHANGE_REQUEST_APPROVED: "{actor} approved a change request for group {group}",
    CHANGE_REQUEST_REJECTED: "{actor} rejected a change request for group {group}",
    CHANGE_FORCED: "{actor} forced a change to protected group {group}",
    CHANGE_REQUEST_EXPIRED: "change request #{change_request} for group {group} expired",
    IDENTITY_REFUSED: "an ID token from {issuer} was refused for project {project}",
    WEBHOOK_TEST: "{actor} sent a test event to webhook {webhook}",
    WEBHOOK_DISABLED: "webhook {webhook} was disabled: {reason}",
}

# Data keys that would carry a value: notify() refuses them, whatever the event.
FORBIDDEN_KEYS = frozenset({"value", "values", "secret", "secrets", "plaintext", "token_value"})


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _text(item: Any) -> str:
    if isinstance(item, list | tuple):
        shown = ", ".join(str(x) for x in item[:10])
        return shown + (f" and {len(item) - 10} more" if len(item) > 10 else "")
    return str(item)


def summary(type_: str, actor: str, organization: str, data: Mapping[str, Any]) -> str:
    """`acme: alice changed group production`: the first line of an email or a Slack
    message."""
    fields = _Missing({key: _text(value) for key, value in data.items()})
    fields["actor"] = actor or "someone"
    line = SUMMARIES.get(type_, type_).format_map(fields)
    return f"{organization}: {line}"
