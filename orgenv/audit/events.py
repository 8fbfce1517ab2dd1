"""Audit events: one call, `record`, writes one append-only record; it has no parameter a
value could travel in. `client_address` is the one rule for a caller's address."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_save
from django.http import HttpRequest
from rest_framework.request import Request

from orgenv.actors import current_actor, current_request
from orgenv.models import AuditEvent, Organization, Project, ProjectToken, VariableGroup
from orgenv.selectors.statements import per_vendor, statement_cursor

USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length


def client_address(request: HttpRequest | Request | None) -> str | None:
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
    request: HttpRequest | Request | None = None,
    organization: Organization | None = None,
    project: Project | None = None,
    project_slug: str = "",
    group: VariableGroup | None = None,
    token: ProjectToken | None = None,
    token_prefix: str = "",
    variables: dict[str, str] | None = None,
    manifest_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event. There is no parameter a value could travel in: `variables`
    maps names to sources, a manifest (orgenv.forensics.manifests) names, sources and
    versions, `detail` holds counts, reasons and formats.

    What is not given is filled from what is: the actor from orgenv.actors (or the signed-in
    user of the current request); the token's prefix and name and its project; the project's
    organization; the group's name and organization; slugs kept as text so the record stays
    readable after deletes; the address and user agent of `request`. `token_prefix` alone
    serves a rejected token whose row is unknown, `project_slug` alone a project deleted
    since (resolve_env --as-of)."""
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

    if token is not None:
        token_prefix = token_prefix or token.prefix
        project = project or token.project
    if project is not None and organization is None:
        organization = project.organization
    if group is not None and organization is None:
        organization = group.organization
    address, agent = None, ""
    if request is not None:
        address = client_address(request)
        agent = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX]
    event = AuditEvent(
        kind=kind,
        actor=actor,
        user=user,
        organization=organization,
        organization_slug=organization.slug if organization is not None else "",
        project=project,
        project_slug=project.slug if project is not None else project_slug,
        group_name=group.name if group is not None else "",
        token=token,
        token_prefix=token_prefix,
        token_name=token.name if token is not None else "",
        address=address,
        user_agent=agent,
        variables=variables or {},
        manifest_id=manifest_id,
        detail=detail or {},
    )
    _insert(event)
    return event


# Every column but the id, in the model's order (orgenv.audit.resolutions writes a 304's
# event with the same list).
INSERT_FIELDS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]


def _build_insert_sql(connection: Any) -> str:
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in INSERT_FIELDS)
    placeholders = ", ".join(["%s"] * len(INSERT_FIELDS))
    return f"INSERT INTO {q(AuditEvent._meta.db_table)} ({columns}) VALUES ({placeholders})" + (
        f" RETURNING {q('id')}" if connection.features.can_return_columns_from_insert else ""
    )


def _insert(event: AuditEvent, using: str = DEFAULT_DB_ALIAS) -> None:
    """What AuditEvent.objects.create() does (field defaults, auto_now_add, post_save) with
    one prepared INSERT instead of the ORM's compiler, which cost more than the statement.
    Append-only: this inserts, and nothing here can update."""
    connection = connections[using]
    params = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in INSERT_FIELDS]
    with statement_cursor(using) as cursor:
        cursor.execute(_insert_sql(connection), params)
        event.pk = cursor.fetchone()[0] if cursor.description else cursor.lastrowid
    event._state.adding = False
    event._state.db = using
    post_save.send(
        sender=AuditEvent, instance=event, created=True, update_fields=None, raw=False, using=using
    )


_insert_sql = per_vendor(_build_insert_sql)
