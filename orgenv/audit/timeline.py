"""The audit timeline of one organization: change history and audit events, newest first.

Efficiency: every source (each history table of the organization's objects, and the audit
events) is queried with the filters applied in SQL, ordered newest first and cut at the
last row the requested page needs; the sorted streams are merged with heapq.merge. The rows
up to the page's end are then explained (field changes, grant changes), in one batch per
table, and "changed" rows with nothing to explain are dropped. Deep pages cost more (page ×
page size rows per source); keyset pagination would be the next step if organizations grew
to millions of rows. The CSV streams every matching row the same way, without a limit,
through QuerySet.iterator(). The project filter reaches group rows through their grant
snapshots (simple-history's m2m history tables), compared with the previous version in SQL.

Values never reach an entry: encrypted fields read as orgenv.audit.censor's "value changed".
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice, repeat
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from orgenv import models as m
from orgenv.audit.censor import CENSORED, censored_fields
from orgenv.models import AuditEvent, Organization

CHANGES = "changes"  # the kind filter value for "every change in history"
HISTORY_VERB = {"+": "created", "~": "changed", "-": "deleted"}
OWNER_COLUMNS = frozenset({"organization_id", "group_id", "project_id"})


def kind_choices() -> list[tuple[str, str]]:
    return [(CHANGES, "changes (history)"), *AuditEvent.Kind.choices]


@dataclass
class Filters:
    actor: str = ""
    kind: str = ""
    project: str = ""
    group: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Entry:
    at: datetime
    kind: str  # "created"/"changed"/"deleted" for history, the event kind's label otherwise
    actor: str
    what: str  # "variable S in group prod", "sign-in"
    project: str = ""
    group: str = ""
    address: str = ""
    changes: list[str] = field(default_factory=list)
    is_event: bool = False
    # For explaining history rows after the page is cut.
    source: Any = None
    row: dict = field(default_factory=dict)


@dataclass
class Index:
    """Names of the organization's objects, past ones included (from history)."""

    group_names: dict[int, str]
    project_slugs: dict[int, str]
    team_slugs: dict[int, str]
    organization_id: int = 0
    organization_slug: str = ""
    usernames: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, org: Organization) -> Index:
        def names(model: Any, attr: str) -> dict[int, str]:
            rows = (
                model.objects.filter(organization_id=org.pk)
                .order_by("history_date", "history_id")
                .values_list("id", attr)
            )
            return dict(rows)  # the latest name wins

        return cls(
            names(m.HistoricalVariableGroup, "name"),
            names(m.HistoricalProject, "slug"),
            names(m.HistoricalTeam, "slug"),
            org.pk,
            org.slug,
            dict(
                get_user_model()
                .objects.filter(
                    Q(
                        pk__in=m.HistoricalMembership.objects.filter(organization_id=org.pk).values(
                            "user_id"
                        )
                    )
                    # Who issued the organization's tokens (a superuser need not be a member).
                    | Q(
                        pk__in=m.HistoricalProjectToken.objects.filter(
                            project__organization_id=org.pk
                        ).values("created_by_id")
                    )
                )
                .values_list("pk", "username")
            ),
        )


@dataclass(frozen=True)
class Source:
    """One history table: how to scope it to the organization and how to label a row."""

    model: Any
    noun: str
    fields: tuple[str, ...]  # extra columns for the label

    def scoped(self, org: Organization, index: Index, f: Filters) -> QuerySet | None:
        qs = self.model.objects.all()
        noun = self.noun
        if noun == "organization":
            qs = qs.filter(id=org.pk)
        elif noun in ("variable",):
            qs = qs.filter(group_id__in=list(index.group_names))
        elif noun in ("project variable", "token"):
            qs = qs.filter(project_id__in=list(index.project_slugs))
        else:
            qs = qs.filter(organization_id=org.pk)
        if f.project:
            ids = [pk for pk, slug in index.project_slugs.items() if slug == f.project]
            if noun == "project":
                qs = qs.filter(id__in=ids)
            elif noun in ("project variable", "token"):
                qs = qs.filter(project_id__in=ids)
            elif noun == "group":
                qs = _grant_changed(qs, ids, _teams_ever_of(ids))
            else:
                return None
        if f.group:
            ids = [pk for pk, name in index.group_names.items() if name == f.group]
            if noun == "group":
                qs = qs.filter(id__in=ids)
            elif noun == "variable":
                qs = qs.filter(group_id__in=ids)
            else:
                return None
        if f.actor:
            qs = qs.filter(history_actor__iexact=f.actor)
        if f.since:
            qs = qs.filter(history_date__gte=f.since)
        if f.until:
            qs = qs.filter(history_date__lte=f.until)
        return qs.order_by("-history_date", "-history_id").values(
            "history_id", "history_date", "history_type", "history_actor", "id", *self.fields
        )

    def entry(self, row: dict, index: Index) -> Entry:
        project = group = ""
        noun = self.noun
        if noun == "variable":
            group = index.group_names.get(row["group_id"], f"#{row['group_id']}")
            what = f"variable {row['name']} in group {group}"
        elif noun == "project variable":
            project = index.project_slugs.get(row["project_id"], f"#{row['project_id']}")
            what = f"project variable {row['name']} of {project}"
        elif noun == "token":
            project = index.project_slugs.get(row["project_id"], f"#{row['project_id']}")
            what = f"token {row['name']} ({row['prefix']}…) of {project}"
        elif noun == "group":
            group = row["name"]
            what = f"group {group}"
        elif noun == "project":
            project = row["slug"]
            what = f"project {project}"
        elif noun == "membership":
            user = index.usernames.get(row["user_id"], f"#{row['user_id']}")
            what = f"membership of {user} ({row['role']})"
        else:
            what = f"{noun} {row.get('slug', '')}".strip()
        return Entry(
            at=row["history_date"],
            kind=HISTORY_VERB.get(row["history_type"], row["history_type"]),
            actor=row["history_actor"] or "",
            what=what,
            project=project,
            group=group,
            source=self,
            row=row,
        )


SOURCES = (
    Source(m.HistoricalOrganization, "organization", ("slug",)),
    Source(m.HistoricalMembership, "membership", ("user_id", "role")),
    Source(m.HistoricalTeam, "team", ("slug",)),
    Source(m.HistoricalProject, "project", ("slug",)),
    Source(m.HistoricalVariableGroup, "group", ("name",)),
    Source(m.HistoricalVariable, "variable", ("name", "group_id")),
    Source(m.HistoricalProjectVariable, "project variable", ("name", "project_id")),
    Source(m.HistoricalProjectToken, "token", ("name", "prefix", "project_id")),
)


def _teams_ever_of(project_ids: list[int]) -> list[int]:
    """Teams the projects belong to now or belonged to in any recorded version: a group's
    change to one of these teams' grants changed what the project may read."""
    past = m.HistoricalProject_teams.objects.filter(
        history__id__in=project_ids, team_id__isnull=False
    ).values_list("team_id", flat=True)
    now = m.Project.teams.through.objects.filter(project_id__in=project_ids).values_list(
        "team_id", flat=True
    )
    return sorted(set(past) | set(now))


def _grant_changed(qs: QuerySet, project_ids: list[int], team_ids: list[int]) -> QuerySet:
    """Group history rows whose snapshot of grants differs from the group's previous
    version on one of these projects or teams: the rows that read "projects added: web",
    "teams removed: ml". All in SQL, so the timeline's per-source limit still holds."""
    model = qs.model
    earlier = Q(history_date__lt=OuterRef("history_date")) | Q(
        history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id")
    )
    qs = qs.annotate(
        previous_history_id=Subquery(
            model.objects.filter(earlier, id=OuterRef("id"))
            .order_by("-history_date", "-history_id")
            .values("history_id")[:1]
        )
    )
    touched = Q(pk__in=[])
    for link, column, ids in (
        (m.HistoricalVariableGroup_projects, "project_id", project_ids),
        (m.HistoricalVariableGroup_teams, "team_id", team_ids),
    ):
        if not ids:
            continue
        # A link in this version but not in the previous one, or the other way round.
        added = link.objects.filter(history_id=OuterRef("history_id"), **{f"{column}__in": ids})
        added = added.exclude(
            Exists(
                link.objects.filter(
                    history_id=OuterRef(OuterRef("previous_history_id")),
                    **{column: OuterRef(column)},
                )
            )
        )
        removed = link.objects.filter(
            history_id=OuterRef("previous_history_id"), **{f"{column}__in": ids}
        ).exclude(
            Exists(
                link.objects.filter(
                    history_id=OuterRef(OuterRef("history_id")), **{column: OuterRef(column)}
                )
            )
        )
        touched |= Q(Exists(added)) | Q(Exists(removed))
    return qs.filter(touched)


# Grant and membership links recorded with their owner's history row.
M2M = {
    m.HistoricalTeam: (("members", m.HistoricalTeam_members, "user_id"),),
    m.HistoricalProject: (
        ("members", m.HistoricalProject_members, "user_id"),
        ("teams", m.HistoricalProject_teams, "team_id"),
    ),
    m.HistoricalVariableGroup: (
        ("projects", m.HistoricalVariableGroup_projects, "project_id"),
        ("teams", m.HistoricalVariableGroup_teams, "team_id"),
    ),
}


def events(org: Organization, f: Filters) -> QuerySet[AuditEvent] | None:
    if f.kind and f.kind == CHANGES:
        return None
    qs = AuditEvent.objects.filter(
        Q(organization=org)
        # Sign-ins carry the organizations the user belonged to at that moment
        # (orgenv.audit.receivers.record_sign_in), so Q(organization=org) holds them.
        # Key rotation is installation-wide (every organization's values are re-encrypted)
        # and its event carries counts only: every organization's admins see it.
        | Q(kind=AuditEvent.Kind.KEYS_ROTATED, organization__isnull=True)
    )
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.project:
        qs = qs.filter(project_slug=f.project)
    if f.group:
        qs = qs.filter(group_name=f.group)
    if f.actor:
        qs = qs.filter(actor__iexact=f.actor)
    if f.since:
        qs = qs.filter(at__gte=f.since)
    if f.until:
        qs = qs.filter(at__lte=f.until)
    return qs.select_related("manifest").order_by("-at", "-id")


def event_entry(event: AuditEvent) -> Entry:
    # The kind is shown beside `what`: `what` adds the token, when there is one.
    what = event.get_kind_display()
    if event.token_prefix:
        what = f"token {event.token_name} ({event.token_prefix}…)"
    changes = []
    if event.sources:
        changes.append("variables: " + ", ".join(sorted(event.sources)))
    if event.detail:
        # `detail` never holds a value (orgenv.audit.events refuses them): show it as it is.
        changes += [f"{key}: {_flat(val)}" for key, val in sorted(event.detail.items())]
    return Entry(
        at=event.at,
        kind=event.get_kind_display(),
        actor=event.actor,
        what=what,
        project=event.project_slug,
        group=event.group_name,
        address=event.address or "",
        changes=changes,
        is_event=True,
    )


def _streams(org: Organization, f: Filters, index: Index, limit: int | None) -> list[Iterator]:
    streams: list[Iterator] = []
    if not f.kind or f.kind == CHANGES:
        for source in SOURCES:
            qs = source.scoped(org, index, f)
            if qs is None:
                continue
            rows = qs[:limit] if limit is not None else qs.iterator(chunk_size=500)
            streams.append(map(source.entry, rows, repeat(index)))
    qs = events(org, f)
    if qs is not None:
        rows = qs[:limit] if limit is not None else qs.iterator(chunk_size=500)
        streams.append(map(event_entry, rows))
    return streams


def count(org: Organization, f: Filters, index: Index | None = None) -> int:
    index = index or Index.of(org)
    total = 0
    if not f.kind or f.kind == CHANGES:
        for source in SOURCES:
            qs = source.scoped(org, index, f)
            total += qs.count() if qs is not None else 0
    qs = events(org, f)
    return total + (qs.count() if qs is not None else 0)


def page(
    org: Organization, f: Filters, number: int, size: int, index: Index | None = None
) -> list[Entry]:
    """Entries number×size … (number+1)×size−1 of the merged timeline, explained."""
    index = index or Index.of(org)
    end = (number + 1) * size
    limit = end
    while True:
        merged = heapq.merge(*_streams(org, f, index, limit), key=lambda e: e.at, reverse=True)
        # The first `limit` merged rows are exactly the timeline's first `limit` rows. All
        # of them are explained, not only the page's, so that rows with nothing to say are
        # dropped before the page is cut (see `_worth_showing`); if that leaves the page
        # short while rows remain, read further (rare: such rows are old noise).
        entries = list(islice(merged, limit))
        explain(entries, index)
        shown = [e for e in entries if _worth_showing(e)]
        if len(shown) >= end or len(entries) < limit:
            return shown[number * size : end]
        limit *= 2


def all_entries(org: Organization, f: Filters, batch: int = 200) -> Iterator[Entry]:
    """Every matching entry, newest first, explained a batch at a time (for the CSV)."""
    index = Index.of(org)
    merged = heapq.merge(*_streams(org, f, index, None), key=lambda e: e.at, reverse=True)
    chunk: list[Entry] = []
    for entry in merged:
        chunk.append(entry)
        if len(chunk) == batch:
            explain(chunk, index)
            yield from filter(_worth_showing, chunk)
            chunk = []
    explain(chunk, index)
    yield from filter(_worth_showing, chunk)


def _worth_showing(entry: Entry) -> bool:
    """A "changed" history row whose version differs from the previous one in nothing is
    noise ("changed group prod" with no details): a save that changed nothing, or a link
    made from the other side of a many-to-many. Saving an unchanged admin form writes none
    (orgenv.admin.base); rows written before that are skipped here."""
    return entry.is_event or entry.kind != HISTORY_VERB["~"] or bool(entry.changes)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an undecryptable value refuses comparison: call it changed
        return False


def explain(entries: Iterable[Entry], index: Index) -> None:
    """Fill `changes` of history entries: what changed since the previous version."""
    by_source: dict[Any, list[Entry]] = {}
    for entry in entries:
        if entry.source is not None:
            by_source.setdefault(entry.source, []).append(entry)
    for source, items in by_source.items():
        _explain_source(source, items, index)


def _explain_source(source: Source, items: list[Entry], index: Index) -> None:
    model = source.model
    ids = {e.row["id"] for e in items}
    latest = max(e.row["history_date"] for e in items)
    hidden = censored_fields(model)
    tracked = [
        f
        for f in model.tracked_fields
        if f.name not in ("id", "updated_at", "created_at", "last_used_at")
    ]
    # values(): an encrypted value comes back decrypted (so a re-encryption of the same
    # value is not a change) or as an Undecryptable marker, never as an exception.
    versions = (
        model.objects.filter(id__in=ids, history_date__lte=latest)
        .order_by("id", "history_date", "history_id")
        .values("history_id", "id", *(f.attname for f in tracked))
    )
    previous: dict[int, Any] = {}
    current: dict[int, Any] = {}
    last_by_id: dict[int, Any] = {}
    for version in versions:
        previous[version["history_id"]] = last_by_id.get(version["id"])
        current[version["history_id"]] = version
        last_by_id[version["id"]] = version

    links = _links(model, items, previous)
    for entry in items:
        hid = entry.row["history_id"]
        now, before = current.get(hid), previous.get(hid)
        if now is None or entry.row["history_type"] == "-":
            continue
        for f in tracked:
            new = now.get(f.attname)
            if before is None:
                if f.name in hidden or f.attname in OWNER_COLUMNS:
                    # A new value: its presence is enough, never its content. The owner
                    # (group, project, organization) is already named in `what`.
                    continue
                if new not in (None, ""):
                    entry.changes.append(f"{f.name}: {_label(f.attname, new, index)}")
                continue
            old = before.get(f.attname)
            if _same(old, new):
                continue
            if f.name in hidden:
                entry.changes.append(f"{f.name}: {CENSORED}")
            else:
                entry.changes.append(
                    f"{f.name}: {_label(f.attname, old, index)} → {_label(f.attname, new, index)}"
                )
        for name, added, removed in links.get(hid, []):
            if added:
                entry.changes.append(f"{name} added: {', '.join(added)}")
            if removed:
                entry.changes.append(f"{name} removed: {', '.join(removed)}")


def _links(model: Any, items: list[Entry], previous: dict[int, Any]) -> dict:
    """Per history id, the m2m links added and removed since the previous version."""
    out: dict[int, list] = {}
    specs = M2M.get(model)
    if not specs:
        return out
    hids = {e.row["history_id"] for e in items}
    wanted = hids | {p["history_id"] for h, p in previous.items() if h in hids and p}
    User = get_user_model()
    for name, link_model, column in specs:
        sets: dict[int, set[int]] = {h: set() for h in wanted}
        for hid, target in link_model.objects.filter(history_id__in=wanted).values_list(
            "history_id", column
        ):
            sets[hid].add(target)
        targets = set().union(*sets.values()) if sets else set()
        if column == "user_id":
            labels = dict(User.objects.filter(pk__in=targets).values_list("pk", "username"))
        elif column == "project_id":
            labels = dict(
                m.HistoricalProject.objects.filter(id__in=targets)
                .order_by("history_date")
                .values_list("id", "slug")
            )
        else:
            labels = dict(
                m.HistoricalTeam.objects.filter(id__in=targets)
                .order_by("history_date")
                .values_list("id", "slug")
            )
        for hid in hids:
            prev = previous.get(hid)
            before = sets.get(prev["history_id"], set()) if prev else set()
            after = sets.get(hid, set())
            added = sorted(labels.get(t, f"#{t}") for t in after - before)
            removed = sorted(labels.get(t, f"#{t}") for t in before - after)
            if added or removed:
                out.setdefault(hid, []).append((name, added, removed))
    return out


def _flat(value: Any) -> str:
    """Event details as words: {"groups": {"created": 8}} reads "groups created 8"."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_flat(val)}" for key, val in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_flat(v) for v in value)
    return str(value)


def _label(attname: str, value: Any, index: Index) -> str:
    if attname == "group_id":
        return index.group_names.get(value, f"#{value}")
    if attname == "project_id":
        return index.project_slugs.get(value, f"#{value}")
    if attname in ("user_id", "created_by_id"):
        if value is None:
            return "—"
        return index.usernames.get(value, f"#{value}")
    if attname == "organization_id":
        return index.organization_slug if value == index.organization_id else f"#{value}"
    if value is None:
        return "—"
    return str(value)
