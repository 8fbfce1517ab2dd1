"""The one resolution record service: resolved layers in, the access event written, the
payload out. The runner API, the member API and `resolve_env` all deliver through it.

Order matters: the values are decrypted first (a value no key decrypts means no event and
no answer), then the event is committed in its own transaction, and only then is the payload
handed back, so nothing is served that was not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from rest_framework.request import Request

from orgenv.audit import events
from orgenv.forensics.manifests import manifest_id
from orgenv.formats import environment_payload
from orgenv.models import AuditEvent, Project, ProjectToken
from orgenv.selectors.layers import ProjectLayers, reveal


@dataclass(frozen=True)
class Delivery:
    event: AuditEvent
    payload: dict[str, Any]  # README "Runner API" shape; secrets withheld are None


def resolution_record(
    *,
    layers: ProjectLayers,
    detail: dict[str, Any],
    actor: str | None = None,
    user: Any = None,
    token: ProjectToken | None = None,
    request: HttpRequest | Request | None = None,
) -> AuditEvent:
    """The access event of one resolution (its manifest: names, sources and versions, never
    a value; orgenv.forensics.manifests), committed or
    rolled back alone before any answer. Alone, it records a fetch that delivers nothing
    (a 304, an --explain)."""
    project: Project | None = layers.project
    organization = layers.project.organization
    if layers.as_of is not None and not Project.objects.filter(pk=project.pk).exists():
        project = None  # deleted since: the event keeps its slug only
    with transaction.atomic():
        return events.record(
            AuditEvent.Kind.RESOLUTION,
            actor=actor,
            user=user,
            token=token,
            project=project,
            project_slug=layers.project.slug,
            organization=organization,
            manifest_id=manifest_id(layers),
            request=request,
            detail=detail,
        )


def resolution_deliver(
    *,
    layers: ProjectLayers,
    secrets: bool,
    detail: dict[str, Any],
    actor: str | None = None,
    user: Any = None,
    token: ProjectToken | None = None,
    request: HttpRequest | Request | None = None,
) -> Delivery:
    """Decrypt the winning values (secret ones only when `secrets`), record the event, and
    return it with the payload."""
    current = layers.as_of is None  # a past value is decrypted without being cached
    values = {
        name: reveal(resolved, cache=current) if secrets or not resolved.is_secret else None
        for name, resolved in layers.resolution.variables.items()
    }
    if not secrets:
        # Exposure and replay read this: such a read did not deliver any secret value.
        detail = {**detail, "secrets_withheld": True}
    event = resolution_record(
        layers=layers, detail=detail, actor=actor, user=user, token=token, request=request
    )
    project = layers.project
    payload = environment_payload(
        organization=project.organization.slug,
        project=project.slug,
        resolution=layers.resolution,
        values=values,
    )
    return Delivery(event, payload)
