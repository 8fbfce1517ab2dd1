"""Replay: the exact environment one resolution delivered, rebuilt from its manifest and the
history rows it names, so rotations and deletes since then do not matter. The body is
rendered by the runner endpoint's own renderers: the bytes are the ones the runner got."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer

from orgenv import crypto
from orgenv.formats import render_dotenv, render_shell
from orgenv.models import AuditEvent

from .manifests import HISTORY, delivered


class ReplayError(Exception):
    """This resolution cannot be replayed; the message says why."""


def replay_payload(event: AuditEvent) -> dict[str, Any]:
    """The JSON body of the resolution `event`, resolution_id included. Secret values are
    null where that resolution withheld them (a member's read)."""
    if event.kind != AuditEvent.Kind.RESOLUTION:
        raise ReplayError(f"Audit event {event.pk} is not a resolution.")
    if event.manifest_id is None:
        raise ReplayError(
            f"Resolution {event.pk} was recorded before manifests: its variable names are "
            "known (see the audit log) but not the versions it delivered."
        )
    items = delivered(event.manifest)
    missing = [item.name for item in items if item.version is None]
    if missing:
        raise ReplayError(
            f"Resolution {event.pk}: {', '.join(missing)} had no history row, so its value "
            "then is unknown."
        )
    wanted: dict[str, list[int]] = {"v": [], "p": []}
    for item in items:
        wanted[item.kind].append(item.version)
    stored = {}
    for kind, versions in wanted.items():
        if versions:
            for hid, token in (
                HISTORY[kind]
                .objects.filter(history_id__in=versions)
                .values_list("history_id", crypto.stored_token("value"))
            ):
                stored[kind, hid] = token
    withheld = bool(event.detail.get("secrets_withheld"))
    values = {}
    for item in items:
        if withheld and item.is_secret:
            values[item.name] = None
            continue
        table = HISTORY[item.kind]._meta.db_table
        values[item.name] = crypto.decrypt(
            stored[item.kind, item.version], table=table, row=item.version
        )
    return {
        "organization": event.organization_slug,
        "project": event.project_slug,
        "variables": values,
        "secrets": sorted(item.name for item in items if item.is_secret),
        "sources": {item.name: item.source for item in sorted(items, key=lambda i: i.name)},
        "conflicts": event.manifest.conflicts,
        "resolution_id": event.pk,
    }


def render_replay(payload: dict[str, Any], fmt: str) -> bytes:
    """The body the runner endpoint sends for `payload` in format `fmt`."""
    if fmt == "json":
        return JSONRenderer().render(payload)
    if any(value is None for value in payload["variables"].values()):
        raise ReplayError(
            "That resolution withheld secret values (a member's read): replay it as json."
        )
    render = render_dotenv if fmt == "dotenv" else render_shell
    return render(payload["variables"]).encode("utf-8")
