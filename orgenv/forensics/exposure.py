"""Exposure: every resolution that delivered a variable — the blast radius of a leaked
credential. Two queries whatever the number of events: the distinct manifests of the
matching events (few: one per state of a project), then the events whose manifest delivered
the name. A member's read that withheld secret values did not deliver a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models.fields.json import KT

from orgenv.models import AuditEvent, Manifest, Organization, Project, VariableGroup
from orgenv.resolution import group_source


@dataclass(frozen=True)
class Delivery:
    event: int
    at: datetime
    project: str
    actor: str
    token_name: str
    token_prefix: str
    address: str
    user_agent: str
    source: str  # group:<name> or project: versions are history ids of that source's table
    version: int | None

    @property
    def who(self) -> str:
        if self.token_prefix:
            return f"token {self.token_name} ({self.token_prefix}…)"
        return self.actor or "unknown"


@dataclass(frozen=True)
class VersionSummary:
    source: str
    version: int | None
    resolutions: int
    first: datetime
    last: datetime


@dataclass
class Exposure:
    target: str  # ORG/project:SLUG or ORG/group:NAME
    name: str
    deliveries: list[Delivery] = field(default_factory=list)  # newest first

    @property
    def tokens(self) -> list[str]:
        return sorted({d.token_prefix for d in self.deliveries if d.token_prefix})

    @property
    def projects(self) -> list[str]:
        return sorted({d.project for d in self.deliveries})

    @property
    def addresses(self) -> list[str]:
        return sorted({d.address for d in self.deliveries if d.address})

    @property
    def versions(self) -> list[VersionSummary]:
        by_version: dict[tuple[str, int | None], list[Delivery]] = {}
        for d in self.deliveries:
            by_version.setdefault((d.source, d.version), []).append(d)
        return [
            VersionSummary(source, v, len(ds), min(d.at for d in ds), max(d.at for d in ds))
            for (source, v), ds in sorted(
                by_version.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0)
            )
        ]

    def summary(self) -> dict:
        return {
            "resolutions": len(self.deliveries),
            "tokens": len(self.tokens),
            "projects": len(self.projects),
            "addresses": len(self.addresses),
            "versions": [
                {
                    "source": v.source,
                    "version": v.version,
                    "resolutions": v.resolutions,
                    "first": v.first.isoformat(),
                    "last": v.last.isoformat(),
                }
                for v in self.versions
            ],
        }


def exposure(
    org: Organization,
    name: str,
    *,
    project: Project | None = None,
    group: VariableGroup | None = None,
    since: datetime | None = None,
    version: int | None = None,
) -> Exposure:
    """Resolutions of `project` that delivered NAME (whatever its source), or resolutions
    of any project that delivered NAME from `group`."""
    events = AuditEvent.objects.filter(
        organization=org, kind=AuditEvent.Kind.RESOLUTION, manifest__isnull=False
    )
    if project is not None:
        events = events.filter(project=project)
        target = f"{org.slug}/project:{project.slug}"
    else:
        assert group is not None
        target = f"{org.slug}/group:{group.name}"
    if since is not None:
        events = events.filter(at__gte=since)

    wanted_source = group_source(group.name) if group is not None else None
    # manifest id → (source, version, is_secret) of NAME in it; a manifest's items read as
    # stored (orgenv.forensics.manifests.Delivered's fields), thousands of them per manifest
    matching: dict[int, tuple[str, int | None, bool]] = {}
    manifests = Manifest.objects.filter(pk__in=events.values("manifest_id"))
    for manifest_id, items in manifests.values_list("id", "variables").iterator(chunk_size=100):
        for item_name, source, _row, item_version, is_secret in items:
            if item_name != name or (wanted_source and source != wanted_source):
                continue
            if version is None or item_version == version:
                matching[manifest_id] = (source, item_version, bool(is_secret))
    result = Exposure(target, name)
    rows = (
        events.filter(manifest_id__in=list(matching))
        .annotate(withheld=KT("detail__secrets_withheld"))
        .order_by("-at", "-id")
        .values_list(
            "id",
            "at",
            "project_slug",
            "actor",
            "token_name",
            "token_prefix",
            "address",
            "user_agent",
            "manifest_id",
            "withheld",
        )
    )
    for eid, at, slug, actor, token_name, prefix, address, agent, mid, withheld in rows.iterator(
        chunk_size=5000
    ):
        source, item_version, is_secret = matching[mid]
        if is_secret and withheld in _WITHHELD:
            continue  # a member's read: the secret's value was withheld
        result.deliveries.append(
            Delivery(
                eid, at, slug, actor, token_name, prefix, address or "", agent, source, item_version
            )
        )
    return result


# detail->>'secrets_withheld' as each database reads JSON true into text.
_WITHHELD = {"true", "1", 1}  # and True, equal to 1


class NoSuchTarget(LookupError):
    """The message names what was looked for and how to write it."""


def find_target(org: Organization, text: str) -> tuple[Project | None, VariableGroup | None]:
    """`SLUG`, `project:SLUG`, `NAME` or `group:NAME` of org: exactly one project or group."""
    kind, colon, key = text.partition(":")
    if not colon:
        kind, key = "", text
    elif kind not in ("project", "group"):
        raise NoSuchTarget(f"{text!r}: write project:SLUG or group:NAME.")
    project = (
        Project.objects.filter(organization=org, slug=key).first() if kind != "group" else None
    )
    group = (
        VariableGroup.objects.filter(organization=org, name=key).first()
        if kind != "project"
        else None
    )
    if project is not None and group is not None:
        raise NoSuchTarget(
            f"{org.slug}/{key} is both a project and a group: write "
            f"{org.slug}/project:{key} or {org.slug}/group:{key}."
        )
    if project is None and group is None:
        what = {"project": "project", "group": "group"}.get(kind, "project or group")
        raise NoSuchTarget(f"There is no {what} {key!r} in organization {org.slug!r}.")
    return project, group
