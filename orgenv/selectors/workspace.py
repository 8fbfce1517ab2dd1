"""Reads of the organization workspace (the admin's tabs): one row per group, per project and
per token, each in a constant number of queries whatever the size of the organization.

Reach comes from selectors.reach.grant_matrix, which applies the same pure rule as
resolution (orgenv.resolution.group_reach): the tabs never disagree with what runners get.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from orgenv.audit.censor import MASK
from orgenv.models import (
    Organization,
    Project,
    ProjectToken,
    Variable,
    VariableGroup,
)
from orgenv.resolution import REACH_ALL, REACH_SELECTED
from orgenv.selectors.layers import load_layers, reveal
from orgenv.selectors.reach import grant_matrix
from orgenv.tokens import PREFIX, TOKEN_RE


@dataclass
class GroupSummary:
    group: VariableGroup
    reach: str  # "all projects", "3 projects", "team ml", "production_db + team ml"
    reached: list[str] = field(default_factory=list)  # slugs of the projects it reaches
    skipped: list[str] = field(default_factory=list)  # slugs kept out by the environment guard
    reach_note: str = ""  # which projects that comes to, when the reach does not say it
    variables: int = 0
    secrets: int = 0
    changed_at: datetime | None = None
    changed_by: str = ""


def _latest(history: QuerySet, column: str) -> Subquery:
    return Subquery(history.order_by("-history_date", "-history_id").values(column)[:1])


def group_summaries(org: Organization) -> list[GroupSummary]:
    """Every group of the organization with its reach, counts and last change (of the group
    or of any of its variables, deletions included, and who made it). Eight queries: the
    grant matrix (six), the groups with counts and last changes, the team grants."""
    matrix = grant_matrix(org)
    group_history = VariableGroup.history.model.objects.filter(id=OuterRef("pk"))
    variable_history = Variable.history.model.objects.filter(group_id=OuterRef("pk"))
    groups = (
        VariableGroup.objects.filter(organization=org)
        .annotate(
            n_variables=Count("variables", distinct=True),
            n_secrets=Count("variables", filter=Q(variables__is_secret=True), distinct=True),
            group_at=_latest(group_history, "history_date"),
            group_by=_latest(group_history, "history_actor"),
            variable_at=_latest(variable_history, "history_date"),
            variable_by=_latest(variable_history, "history_actor"),
        )
        .order_by("name")
    )
    teams: dict[int, list[str]] = defaultdict(list)
    for gid, slug in (
        VariableGroup.teams.through.objects.filter(variablegroup__organization=org)
        .order_by("team__slug")
        .values_list("variablegroup_id", "team__slug")
    ):
        teams[gid].append(slug)
    column = {g.pk: i for i, g in enumerate(matrix.groups)}
    summaries = []
    for group in groups:
        i = column[group.pk]
        cells = [(row.project.slug, row.cells[i]) for row in matrix.rows]
        reached = [slug for slug, reach in cells if reach.reaches]
        selected = [slug for slug, reach in cells if reach.how == REACH_SELECTED]
        skipped = [s for s, r in cells if r.skipped_because.startswith("environment guard")]
        at, by = group.group_at, group.group_by
        if group.variable_at is not None and (at is None or group.variable_at > at):
            at, by = group.variable_at, group.variable_by
        text = reach_text(group.access, selected, teams[group.pk])
        summaries.append(
            GroupSummary(
                group=group,
                reach=text,
                reach_note=reach_note(text, reached),
                reached=reached,
                skipped=skipped,
                variables=group.n_variables,
                secrets=group.n_secrets,
                changed_at=at,
                changed_by=by or "",
            )
        )
    return summaries


def reach_text(access: str, selected: list[str], teams: list[str]) -> str:
    """How a group is granted, in the words of the workspace: "all projects", "3 projects",
    "production_db", "team ml", "2 projects + team ml", or "no project yet"."""
    if access == REACH_ALL:
        return "all projects"
    parts = []
    if len(selected) == 1:
        parts.append(selected[0])
    elif selected:
        parts.append(f"{len(selected)} projects")
    if teams:
        parts.append(("team " if len(teams) == 1 else "teams ") + ", ".join(teams))
    return " + ".join(parts) or "no project yet"


def reach_note(text: str, reached: list[str]) -> str:
    """The projects a reach comes to, unless `text` already names them."""
    if reached == [text]:
        return ""
    if not reached:
        return "no project" if text != "no project yet" else ""
    if len(reached) <= 3 and text != "all projects":
        return ", ".join(reached)
    return f"{len(reached)} project" + ("s" if len(reached) != 1 else "")


@dataclass
class ProjectSummary:
    project: Project
    groups: int  # groups that reach it
    variables: int  # its own variables
    secrets: int
    active_tokens: int
    last_run: datetime | None


def project_summaries(org: Organization) -> list[ProjectSummary]:
    """Every project with how many groups reach it, its own variables and its live tokens.
    Seven queries: the grant matrix (six) and the projects with their counts."""
    matrix = grant_matrix(org)
    live = Q(tokens__in=ProjectToken.objects.active())  # the one rule of a token's status
    counts = {
        p.pk: p
        for p in Project.objects.filter(organization=org).annotate(
            n_variables=Count("variables", distinct=True),
            n_secrets=Count("variables", filter=Q(variables__is_secret=True), distinct=True),
            n_tokens=Count("tokens", filter=live, distinct=True),
        )
    }
    return [
        ProjectSummary(
            project=counts[row.project.pk],
            groups=row.reaching,
            variables=counts[row.project.pk].n_variables,
            secrets=counts[row.project.pk].n_secrets,
            active_tokens=counts[row.project.pk].n_tokens,
            last_run=row.last_resolution,
        )
        for row in matrix.rows
    ]


def token_search_prefix(text: str) -> str:
    """What to look a token up by: a full token (`oev_<lookup>.<secret>`, say pasted from a
    leak report) is searched by its public part, the rest ignored — the secret is never
    stored, so it cannot be searched, and it is not kept in the search box either."""
    text = text.strip()
    match = TOKEN_RE.fullmatch(text)
    if match:
        return f"{PREFIX}{match.group(1)}"
    if text.startswith(PREFIX) and "." in text:
        return text.split(".", 1)[0]
    return text


def organization_tokens(org: Organization, search: str = "") -> QuerySet[ProjectToken]:
    """The organization's tokens, newest first, optionally searched by name, project or
    (full) token."""
    tokens = ProjectToken.objects.filter(project__organization=org).select_related(
        "project", "created_by"
    )
    term = token_search_prefix(search)
    if term:
        tokens = tokens.filter(
            Q(prefix__iexact=term)
            | Q(prefix__istartswith=term)
            | Q(name__icontains=term)
            | Q(project__slug__icontains=term)
        )
    return tokens.order_by("-created_at", "-id")


@dataclass
class CompareCell:
    source: str  # "group:<name>" or "project"
    value: str  # a public value, or the mask for a secret (never decrypted for this page)
    is_secret: bool


@dataclass
class CompareRow:
    name: str
    cells: list[CompareCell | None]  # one per project, None where the name is not set
    gaps: list[str] = field(default_factory=list)  # "set for a but not b" per environment

    @property
    def differs(self) -> bool:
        seen = {(c.source, c.value) for c in self.cells if c is not None}
        return len(seen) > 1 or any(c is None for c in self.cells)


@dataclass
class Comparison:
    projects: list[Project]
    rows: list[CompareRow]
    environments: list[str]  # every label of the organization's projects, for the filter

    @property
    def gaps(self) -> list[str]:
        return [gap for row in self.rows for gap in row.gaps]


def compare_projects(org: Organization, environment: str | None = None) -> Comparison:
    """The organization's projects side by side: each resolved (two queries a project,
    nothing secret decrypted), one row per name. A name set for some projects of an
    environment but not for others is a gap, the usual cause of "works in production-ml,
    fails in production-api"."""
    all_projects = list(Project.objects.filter(organization=org).order_by("environment", "slug"))
    environments = sorted({p.environment for p in all_projects})
    projects = [p for p in all_projects if environment is None or p.environment == environment]
    resolved = [load_layers(p).resolution.variables for p in projects]
    names = sorted({name for variables in resolved for name in variables})
    rows = []
    for name in names:
        cells: list[CompareCell | None] = []
        for variables in resolved:
            item = variables.get(name)
            if item is None:
                cells.append(None)
            else:
                value = MASK if item.is_secret else reveal(item)
                cells.append(CompareCell(item.source, value, item.is_secret))
        row = CompareRow(name, cells)
        by_env: dict[str, tuple[list[str], list[str]]] = {}
        for project, cell in zip(projects, cells, strict=True):
            have, lack = by_env.setdefault(project.environment, ([], []))
            (lack if cell is None else have).append(project.slug)
        for env, (have, lack) in sorted(by_env.items()):
            if have and lack:
                where = f" ({env})" if env else " (no environment)"
                row.gaps.append(
                    f"{name} is set for {', '.join(have)} but not {', '.join(lack)}{where}."
                )
        rows.append(row)
    return Comparison(projects, rows, environments)
