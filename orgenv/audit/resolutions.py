"""The one resolution record service: resolved layers in, the access event written, the
payload out. The runner API, the member API and `resolve_env` all deliver through it.

Order matters: the values are decrypted first (a value no key decrypts means no event and
no answer), then the event is committed in its own transaction, and only then is the payload
handed back, so nothing is served that was not recorded.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models.signals import post_save
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from orgenv.audit import events
from orgenv.forensics.manifests import forget as forget_manifest
from orgenv.forensics.manifests import manifest_id
from orgenv.formats import environment_payload
from orgenv.models import AuditEvent, Organization, Project, ProjectToken
from orgenv.selectors.layers import ProjectLayers, reveal
from orgenv.selectors.statements import per_vendor, statement_cursor, unchecked
from orgenv.tokens import LAST_USED_RESOLUTION


@dataclass(frozen=True)
class Delivery:
    event: AuditEvent
    payload: dict[str, Any]  # docs/api.md shape; secrets withheld are None


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
    a value; orgenv.forensics.manifests), committed (one INSERT) or rolled back alone before
    any answer. Alone, it records a fetch that delivers nothing
    (a 304, an --explain)."""
    project: Project | None = layers.project
    organization = layers.project.organization
    if layers.as_of is not None and not Project.objects.filter(pk=project.pk).exists():
        project = None  # deleted since: the event keeps its slug only
    for attempt in (1, 2):
        # In autocommit the INSERT is its own transaction, committed when it returns: no
        # BEGIN and COMMIT round trips. Inside a caller's transaction, a savepoint keeps a
        # failed insert from breaking it.
        autocommit = not connection.in_atomic_block
        try:
            with nullcontext() if autocommit else transaction.atomic():
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
        except IntegrityError:
            # The manifest was pruned since this process remembered or found its id (the
            # event's foreign key, checked at commit, refused it): store it again, once.
            if attempt == 2 or not autocommit:
                raise
            forget_manifest(layers)
    raise AssertionError("unreachable")


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


def repeat_record(
    *,
    token_id: int,
    token_digest: str,
    project_id: int,
    organization_id: int,
    generation: int,
    manifest: int,
    actor: str,
    request: HttpRequest | Request,
    detail: dict[str, Any],
    using: str = DEFAULT_DB_ALIAS,
) -> int | None:
    """The access event of an answer given again (the same environment, or a 304) in one
    statement; its id, or None, having written nothing, when that statement cannot vouch
    for it.

    The INSERT takes the token's, the project's and the organization's names from their rows
    and happens only if, at that moment, the token (this id and digest) is neither revoked nor
    expired nor due for a new last_used_at, and the organization's generation is still the
    one the answer was made under — so the project's layers, and the manifest, are the ones
    the answer was made of. Checking and recording are one statement: nothing can change in
    between. The caller answers anything else the long way (orgenv.api.runner)."""
    connection = connections[using]
    now = timezone.now()
    values = {
        "at": now,
        "kind": AuditEvent.Kind.RESOLUTION.value,
        "actor": actor,
        "address": events.client_address(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[: events.USER_AGENT_MAX],
        "variables": {},
        "manifest": manifest,
        "detail": detail,
    }
    params = [
        f.get_db_prep_save(values[f.name], connection)
        for f in events.INSERT_FIELDS
        if f.name in values
    ]
    params += [
        token_id,
        token_digest,
        project_id,
        generation,
        connection.ops.adapt_datetimefield_value(now),
        connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION),
    ]
    # Usually a request's first statement: without Django's health check round trip. A
    # kept connection found broken is closed and the caller goes the long way, on a new one
    # (should the connection have broken after this INSERT committed, that way records the
    # answer a second time: an extra access event, never a missing one).
    kept = unchecked(using)
    try:
        with statement_cursor(using) as cursor:
            cursor.execute(_repeat_sql(connection, tuple(values)), params)
            row = cursor.fetchone()
    except (OperationalError, InterfaceError):
        if not kept:
            raise
        connection.close()
        return None
    if row is None:
        return None
    # As AuditEvent.objects.create() would signal it (orgenv.operations.metrics counts it).
    event = AuditEvent(
        pk=row[0],
        kind=values["kind"],
        actor=actor,
        organization_id=organization_id,
        project_id=project_id,
        token_id=token_id,
        manifest_id=manifest,
        detail=detail,
    )
    event._state.adding = False
    event._state.db = using
    post_save.send(
        sender=AuditEvent, instance=event, created=True, update_fields=None, raw=False, using=using
    )
    return row[0]


def _build_repeat_sql(connection: Any, given: tuple[str, ...]) -> str:
    q = connection.ops.quote_name
    from_rows = {
        "user": "NULL",
        "organization": "o.id",
        "organization_slug": "o.slug",
        "project": "p.id",
        "project_slug": "p.slug",
        "group_name": "''",
        "token": "t.id",
        "token_prefix": "t.prefix",
        "token_name": "t.name",
    }
    # PostgreSQL types a parameter from where it stands: in a SELECT list, only a cast says
    # it is a timestamp, an inet or a jsonb. SQLite needs none (and would read a date cast
    # as a number).
    postgres = connection.vendor == "postgresql"
    expressions = []
    for field in events.INSERT_FIELDS:
        if field.name in given:
            expressions.append(f"CAST(%s AS {field.db_type(connection)})" if postgres else "%s")
        else:
            expressions.append(from_rows[field.name])
    columns = ", ".join(q(f.column) for f in events.INSERT_FIELDS)
    tokens, projects = q(ProjectToken._meta.db_table), q(Project._meta.db_table)
    organizations = q(Organization._meta.db_table)
    return (
        f"INSERT INTO {q(AuditEvent._meta.db_table)} ({columns}) "
        f"SELECT {', '.join(expressions)} "
        f"FROM {tokens} t JOIN {projects} p ON p.id = t.project_id "
        f"JOIN {organizations} o ON o.id = p.organization_id "
        "WHERE t.id = %s AND t.digest = %s AND p.id = %s AND o.generation = %s "
        "AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > %s) "
        f"AND t.last_used_at > %s RETURNING {q('id')}"
    )


# The columns given are the same on every call (repeat_record's arguments).
_repeat_sql = per_vendor(_build_repeat_sql)
