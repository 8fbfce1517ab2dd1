"""The events the changes emit, one function each: what each carries (names, projects, a
version, a link; never a value) in one place. Each is called inside the change's
transaction and writes its one outbox row there (orgenv.notifications.notify)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from . import events
from .outbox import notify


def token_created(token: Any) -> None:
    project = token.project
    notify(
        events.TOKEN_CREATED,
        organization=project.organization,
        data={
            "project": project.slug,
            "token": token.name,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
        link=reverse("admin:orgenv_projecttoken_change", args=(token.pk,)),
    )


def token_revoked(token: Any) -> None:
    project = token.project
    notify(
        events.TOKEN_REVOKED,
        organization=project.organization,
        data={"project": project.slug, "token": token.name, "prefix": token.prefix},
        link=reverse("admin:orgenv_projecttoken_change", args=(token.pk,)),
    )


def secret_revealed(*, project: Any, name: str, source: str, actor: Any, audit_event: int) -> None:
    """A reveal through the audited endpoint. The reason typed is left out: it is free text,
    and a payload must never carry what someone may have pasted."""
    notify(
        events.SECRET_REVEALED,
        organization=project.organization,
        actor=actor,
        data={
            "project": project.slug,
            "names": [name],
            "source": source,
            "audit_event": audit_event,
        },
        link=reverse("admin:orgenv_workspace_audit", args=(project.organization.slug,))
        + f"?project={project.slug}",
    )
