"""Manifests: what one resolution delivered — per variable its name, source, row and
version (the id of the history row holding that value) — stored once per distinct content.

On the runner's hot path a manifest costs nothing in the steady state: the layers'
fingerprint (which changes whenever any row that could be delivered changes, its last
change included) maps to the manifest id in a per-process table, so a resolution of an
unchanged project adds no query, only the manifest id in its access event. A fingerprint
seen for the first time costs one query per kind of variable for the versions, one lookup
by digest and, for new content, one insert of a small row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, ProtectedError, QuerySet

from orgenv.models import (
    AuditEvent,
    Manifest,
    Organization,
    ProjectVariable,
    Variable,
)
from orgenv.resolution import Resolution
from orgenv.selectors.layers import ProjectLayers

HISTORY = {"v": Variable.history.model, "p": ProjectVariable.history.model}

# fingerprint → manifest id, for this process. Content-addressed rows never change, so an
# entry can only go stale if its insert was rolled back: entries are added once committed.
_known: dict[str, int] = {}
_KNOWN_MAX = 10_000


@dataclass(frozen=True)
class Delivered:
    """One variable of a manifest."""

    name: str
    source: str
    row: int  # the Variable's id, or the ProjectVariable's when source == "project"
    version: int | None  # the history row's id (None: the row has no history)
    is_secret: bool

    @property
    def kind(self) -> str:
        return "p" if self.source == "project" else "v"


def delivered(manifest: Manifest) -> list[Delivered]:
    return [Delivered(n, s, r, v, bool(x)) for n, s, r, v, x in manifest.variables]


def _versions(resolution: Resolution, as_of: datetime | None) -> dict[tuple[str, int], int]:
    rows: dict[str, list[int]] = {"v": [], "p": []}
    for resolved in resolution.variables.values():
        kind, row = resolved.ref
        rows[kind].append(row)
    versions = {}
    for kind, ids in rows.items():
        if not ids:
            continue
        history = HISTORY[kind].objects.filter(id__in=ids)
        if as_of is not None:
            history = history.filter(history_date__lte=as_of)
        for row, version in (
            history.values("id").annotate(v=Max("history_id")).values_list("id", "v")
        ):
            versions[kind, row] = version
    return versions


def content(resolution: Resolution, *, as_of: datetime | None = None) -> tuple[list, list]:
    """(variables, conflicts) of a manifest, variables in delivery order."""
    versions = _versions(resolution, as_of)
    variables = [
        [name, r.source, r.ref[1], versions.get(r.ref), int(r.is_secret)]
        for name, r in resolution.variables.items()
    ]
    return variables, [c.as_dict() for c in resolution.conflicts]


def _stored(variables: list, conflicts: list) -> int:
    text = json.dumps([variables, conflicts], separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode()).hexdigest()
    found = Manifest.objects.filter(digest=digest).values_list("id", flat=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():  # another process may store the same content meanwhile
            return Manifest.objects.create(
                digest=digest, variables=variables, conflicts=conflicts
            ).pk
    except IntegrityError:
        return Manifest.objects.get(digest=digest).pk


def manifest_id(layers: ProjectLayers) -> int:
    """The id of the manifest of this resolution, stored if new; for layers read from
    history (--as-of), the versions then. Call it inside the transaction that writes the
    access event."""
    as_of = layers.as_of
    key = layers.fingerprint
    if as_of is None and key in _known:
        return _known[key]
    found = _stored(*content(layers.resolution, as_of=as_of))
    if as_of is None:
        transaction.on_commit(lambda: _remember(key, found))
    return found


def _remember(key: str, found: int) -> None:
    if len(_known) >= _KNOWN_MAX:
        _known.clear()
    _known[key] = found


def forget(layers: ProjectLayers) -> None:
    """Drop this process's memo of the layers' manifest id: such an id may be gone from the
    database, since `prune` deletes the manifests no event references any more, which the
    memo of a process cannot know."""
    _known.pop(layers.fingerprint, None)


def prunable(older_than: datetime) -> QuerySet[Manifest]:
    """The manifests created before `older_than` that no event of `older_than` or later
    references: those no event references once the older events are pruned."""
    return Manifest.objects.filter(created_at__lt=older_than).filter(
        ~Exists(AuditEvent.objects.filter(manifest=OuterRef("pk"), at__gte=older_than))
    )


def prune(older_than: datetime, *, batch_size: int = 2000) -> int:
    """Delete the `prunable` manifests, once prune_audit has deleted the events older than
    `older_than` (an older event still referencing one keeps it); how many. In short
    transactions of `batch_size`, pausing for other writers on SQLite as the events' pruning
    does. A manifest an access event comes to reference meanwhile is kept: the delete
    re-checks, and the database's foreign key refuses the rest (that batch is then chosen
    again)."""
    from orgenv.services.bulk import let_others_write  # services import this module

    unreferenced = prunable(older_than)
    deleted = refused = 0
    while refused < 3:
        batch = list(unreferenced.order_by("id").values_list("id", flat=True)[:batch_size])
        if not batch:
            break
        try:
            with transaction.atomic():
                count, _ = unreferenced.filter(id__in=batch).delete()
        except (IntegrityError, ProtectedError):
            refused += 1  # an event came to reference one: choose again
            continue
        deleted += count
        let_others_write(Manifest.objects.db)
    return deleted


def last_deliveries(org: Organization) -> dict[tuple[str, int], datetime]:
    """(kind, row id) → the time of the last resolution that delivered that variable, for
    every variable an event of this organization ever delivered. Two queries: the last
    event per manifest, then those manifests."""
    last_per_manifest = dict(
        AuditEvent.objects.filter(
            organization=org, kind=AuditEvent.Kind.RESOLUTION, manifest__isnull=False
        )
        .order_by()
        .values("manifest_id")
        .annotate(last=Max("at"))
        .values_list("manifest_id", "last")
    )
    result: dict[tuple[str, int], datetime] = {}
    for manifest in Manifest.objects.filter(pk__in=list(last_per_manifest)):
        at = last_per_manifest[manifest.pk]
        for item in delivered(manifest):
            key = (item.kind, item.row)
            if key not in result or result[key] < at:
                result[key] = at
    return result


def manifests_of(events: Iterable[AuditEvent]) -> dict[int, Manifest]:
    ids = {e.manifest_id for e in events if e.manifest_id}
    return {m.pk: m for m in Manifest.objects.filter(pk__in=ids)}
