"""Audit events: one call writes one append-only record. Never pass a value here."""

from __future__ import annotations

from typing import Any

from .actors import current_actor
from .models import AuditEvent


def record(kind: str, *, actor: str | None = None, user: Any = None, **fields: Any) -> AuditEvent:
    """Write one audit event. The actor defaults to the current one (orgenv.actors)."""
    current = current_actor()
    if actor is None:
        actor = current.label if current else (user.get_username() if user else "")
    if user is None and current is not None:
        user = current.user
    organization = fields.get("organization")
    if organization is not None and not fields.get("organization_slug"):
        fields["organization_slug"] = organization.slug
    project = fields.get("project")
    if project is not None and not fields.get("project_slug"):
        fields["project_slug"] = project.slug
        fields.setdefault("organization_id", project.organization_id)
    return AuditEvent.objects.create(kind=kind, actor=actor, user=user, **fields)
