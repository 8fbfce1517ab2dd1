"""Audit events: one call writes one append-only record. Never pass a value here.

`record(kind, **fields)` fills what it can from what it is given, so callers stay short:
the actor from orgenv.actors, the organization and project slugs (kept as text so the
record stays readable after deletes), the token's prefix and name, the group's name, and
the address and user agent of a request.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from orgenv.actors import current_actor, current_request
from orgenv.models import AuditEvent

# Keyword arguments that would smuggle a value into the record: refused loudly.
_FORBIDDEN = frozenset({"value", "values", "plaintext"})

USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length


def client_address(request: HttpRequest | None) -> str | None:
    """The caller's address: REMOTE_ADDR, or, behind ORGENV_TRUSTED_PROXIES proxies, the
    address the outermost trusted proxy saw. X-Forwarded-For is ignored otherwise, because
    any client can write it. One rule for sign-ins, audit events and rate limits alike."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR", "")
    proxies = getattr(settings, "ORGENV_TRUSTED_PROXIES", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            address = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record(
    kind: str,
    *,
    actor: str | None = None,
    user: Any = None,
    request: HttpRequest | None = None,
    group: Any = None,
    **fields: Any,
) -> AuditEvent:
    """Write one audit event. The actor defaults to the current one (orgenv.actors)."""
    smuggled = _FORBIDDEN & fields.keys()
    if smuggled:
        raise TypeError(f"Audit events never hold values: drop {', '.join(sorted(smuggled))}.")
    current = current_actor()
    if user is None and current is not None:
        user = current.user
    if current is None and actor is None and user is None:
        # No explicit actor: a signed-in user's request (the admin, the pages).
        request = request or current_request()
        request_user = getattr(request, "user", None)
        if request_user is not None and request_user.is_authenticated:
            user = request_user
    if actor is None:
        actor = current.label if current else (user.get_username() if user else "")

    if request is not None:
        fields.setdefault("address", client_address(request))
        agent = request.META.get("HTTP_USER_AGENT", "")
        fields.setdefault("user_agent", agent[:USER_AGENT_MAX])

    token = fields.get("token")
    if token is not None:
        fields.setdefault("token_prefix", token.prefix)
        fields.setdefault("token_name", token.name)
        fields.setdefault("project", token.project)

    if group is not None:
        fields.setdefault("group_name", group.name)
        fields.setdefault("organization_id", group.organization_id)

    project = fields.get("project")
    if project is not None:
        fields.setdefault("project_slug", project.slug)
        if "organization" not in fields:
            fields.setdefault("organization_id", project.organization_id)

    organization = fields.get("organization")
    if organization is not None:
        fields.setdefault("organization_slug", organization.slug)
    elif fields.get("organization_id") and not fields.get("organization_slug"):
        from orgenv.models import Organization

        slug = (
            Organization.objects.filter(pk=fields["organization_id"])
            .values_list("slug", flat=True)
            .first()
        )
        fields["organization_slug"] = slug or ""
    return AuditEvent.objects.create(kind=kind, actor=actor, user=user, **fields)
