"""As-of resolution: a project's environment exactly as it resolved at a past moment.

Everything comes from simple-history's tables, read as they were at `when`:
- the project's own row (its environment label) and its team links (m2m rows of that row);
- every group of the organization (name, priority, environment, access) and its project and
  team grants (m2m rows belonging to the group's history row);
- the variables of the groups that reached the project, and the project's variables, with
  their values (still encrypted: history rows use the same EncryptedTextField) and secret
  flags.
For each object "as it was" is its latest history row at or before `when` (history_date,
then history_id to break ties); a latest row of type "-" means it was deleted by then.
Precedence is not repeated here: the rows become the same plain layers orgenv.resolution
resolves for the live project, so a past environment follows exactly today's rules.

At most seven queries whatever the size of the organization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from orgenv import crypto
from orgenv import models as m
from orgenv.crypto import Ciphertext
from orgenv.models import Organization, Project
from orgenv.resolution import Definition, GroupLayer, group_reach, group_source, resolve
from orgenv.selectors.layers import GroupReach, ProjectLayers

DELETED = "-"


class AsOfError(ValueError):
    """The question cannot be answered: a bad time, or no such project at that time."""


def parse_when(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is taken as UTC.

    Well-formed nonsense (month 13) and moments outside the years 1–9999 once in UTC
    (0001-01-01T00:00+14:00) are refused like any other bad input, not left to fail later.
    """
    try:
        value = parse_datetime(text.strip())
        if value is None:
            day = parse_date(text.strip())
            if day is None:
                raise ValueError(text)
            value = datetime.combine(day, time.min)
        if timezone.is_naive(value):
            value = value.replace(tzinfo=UTC)
        value.astimezone(UTC)  # the database compares in UTC: it must exist there
        return value
    except (ValueError, OverflowError):
        raise AsOfError(
            f"--as-of: {text!r} is not an ISO 8601 date or time between the years 1 and 9999 "
            "(for example 2026-01-31T14:05:00Z)."
        ) from None


def _latest_per_id(rows: Iterable[tuple]) -> dict[int, tuple]:
    """Rows ordered by (id, history_date, history_id) with the id first: the last wins."""
    latest: dict[int, tuple] = {}
    for row in rows:
        latest[row[0]] = row
    return latest


def project_row_as_of(project_id: int, when: datetime) -> m.HistoricalProject:
    history = m.HistoricalProject.objects.filter(id=project_id)
    row = history.filter(history_date__lte=when).order_by("-history_date", "-history_id").first()
    if row is None:
        first = history.order_by("history_date").values_list("history_date", flat=True).first()
        since = f" (it was created at {first.isoformat()})" if first else ""
        raise AsOfError(f"The project did not exist at {when.isoformat()}{since}.")
    if row.history_type == DELETED:
        raise AsOfError(
            f"Project {row.slug!r} had been deleted by {when.isoformat()} "
            f"(at {row.history_date.isoformat()})."
        )
    return row


def find_project(organization_slug: str, project_slug: str, when: datetime) -> Project:
    """The project called ORG/PROJECT at `when`, even if it was renamed or deleted since."""
    org = Organization.objects.filter(slug=organization_slug).first()
    if org is None:
        raise AsOfError(f"There is no organization {organization_slug!r}.")
    candidates = (
        m.HistoricalProject.objects.filter(organization_id=org.pk, history_date__lte=when)
        .order_by("id", "history_date", "history_id")
        .values_list("id", "slug", "history_type")
    )
    for project_id, slug, kind in _latest_per_id(candidates).values():
        if slug == project_slug and kind != DELETED:
            return Project(id=project_id, organization=org, slug=slug)
    raise AsOfError(
        f"There was no project {organization_slug}/{project_slug} at {when.isoformat()}."
    )


def layers_as_of(project: Project, when: datetime) -> ProjectLayers:
    """The layers of `project` as they were at `when`, values as crypto.Ciphertext (reveal
    them with selectors.layers). Raises AsOfError when the project did not exist then."""
    # 1. the project's row: its label, and (2.) its team links at that time
    row = project_row_as_of(project.pk, when)
    past_project = Project(
        id=row.id,
        organization_id=row.organization_id,
        slug=row.slug,
        name=row.name,
        environment=row.environment,
    )
    team_ids = set(
        m.HistoricalProject_teams.objects.filter(history_id=row.history_id).values_list(
            "team_id", flat=True
        )
    )

    # 3. every group of the organization as it was
    group_rows = _latest_per_id(
        m.HistoricalVariableGroup.objects.filter(
            organization_id=row.organization_id, history_date__lte=when
        )
        .order_by("id", "history_date", "history_id")
        .values_list(
            "id", "history_id", "name", "priority", "environment", "access", "history_type"
        )
    )
    live = {gid: r for gid, r in group_rows.items() if r[6] != DELETED}
    by_history_id = {r[1]: gid for gid, r in live.items()}

    # 4. and 5. their grants as they were: m2m rows belong to the group's history row
    selected = {
        by_history_id[hid]
        for hid in m.HistoricalVariableGroup_projects.objects.filter(
            history_id__in=list(by_history_id), project_id=row.id
        ).values_list("history_id", flat=True)
    }
    via_team = {
        by_history_id[hid]
        for hid in m.HistoricalVariableGroup_teams.objects.filter(
            history_id__in=list(by_history_id), team_id__in=list(team_ids)
        ).values_list("history_id", flat=True)
    }

    groups: list[GroupReach] = []
    stamp = hashlib.sha256(f"asof:p{row.history_id}".encode())
    for gid, (_, hid, name, priority, env, access, _) in sorted(
        live.items(), key=lambda item: item[1][2]
    ):
        reach = group_reach(
            group_environment=env,
            access=access,
            selected=gid in selected,
            via_team=gid in via_team,
            project_environment=row.environment,
        )
        groups.append(GroupReach(gid, name, priority, env, access, reach))
        if reach.reaches:
            stamp.update(f"|g{hid}".encode())
    reaching = {g.id: g for g in groups if g.reach.reaches}

    # 6. variables that were in a reaching group at some point up to `when`, then (7.)
    # each one's latest row: it may have changed group or been deleted since.
    variables: dict[int, list[Definition]] = {gid: [] for gid in reaching}
    if reaching:
        candidates = m.HistoricalVariable.objects.filter(
            group_id__in=list(reaching), history_date__lte=when
        ).values("id")
        rows = _latest_per_id(
            m.HistoricalVariable.objects.filter(id__in=candidates, history_date__lte=when)
            .order_by("id", "history_date", "history_id")
            .values_list(
                "id",
                "history_id",
                "group_id",
                "name",
                "is_secret",
                crypto.stored_token("value"),
                "history_type",
            )
        )
        for vid, hid, gid, name, is_secret, token, kind in sorted(
            rows.values(), key=lambda r: r[3]
        ):
            if kind == DELETED or gid not in reaching:
                continue
            group = reaching[gid]
            variables[gid].append(
                Definition(
                    name,
                    Ciphertext(token),
                    is_secret,
                    group_source(group.name),
                    group.priority,
                    ("v", vid),
                )
            )
            stamp.update(f"|v{hid}".encode())

    # 8. the project's own variables as they were
    project_rows = _latest_per_id(
        m.HistoricalProjectVariable.objects.filter(
            id__in=m.HistoricalProjectVariable.objects.filter(project_id=row.id).values("id"),
            history_date__lte=when,
        )
        .order_by("id", "history_date", "history_id")
        .values_list(
            "id",
            "history_id",
            "project_id",
            "name",
            "is_secret",
            crypto.stored_token("value"),
            "history_type",
        )
    )
    project_defs = []
    for pvid, hid, pid, name, is_secret, token, kind in sorted(
        project_rows.values(), key=lambda r: r[3]
    ):
        if kind == DELETED or pid != row.id:
            continue
        project_defs.append(
            Definition(name, Ciphertext(token), is_secret, "project", ref=("p", pvid))
        )
        stamp.update(f"|p{hid}".encode())

    resolution = resolve(
        (
            GroupLayer(reaching[gid].name, reaching[gid].priority, defs)
            for gid, defs in variables.items()
        ),
        project_defs,
    )
    return ProjectLayers(past_project, groups, resolution, stamp.hexdigest(), as_of=when)
