"""Applying a validated configuration: one transaction, through orgenv.services, counting
what changed (never values) and recording one audit event per organization that changed."""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from .. import audit, services
from ..models import AuditEvent, Organization, Project, Team
from .validation import Config, OrganizationSpec, VariableSpec


@dataclass
class Summary:
    """What apply changed, per organization: counts[org][(thing, outcome)]."""

    counts: dict[str, Counter] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(
            n
            for c in self.counts.values()
            for (_, outcome), n in c.items()
            if outcome != "unchanged"
        )

    def as_detail(self, org: str) -> dict[str, dict[str, int]]:
        detail: dict[str, dict[str, int]] = {}
        for (thing, outcome), n in sorted(self.counts[org].items()):
            if n and outcome != "unchanged":
                detail.setdefault(thing, {})[outcome] = n
        return detail

    def lines(self) -> list[str]:
        out = []
        for org in self.counts:
            detail = self.as_detail(org)
            parts = [
                f"{thing} " + ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items())
                for thing, outcomes in detail.items()
            ]
            out.append(f"{org}: " + ("; ".join(parts) if parts else "nothing to change") + ".")
        return out


@transaction.atomic
def apply(config: Config, *, prune: bool = False) -> Summary:
    """Make the database match a validated configuration, all or nothing."""
    summary = Summary()
    User = get_user_model()
    for spec in config.organizations:
        counts = summary.counts.setdefault(spec.slug, Counter())
        _apply_organization(spec, counts, prune, User)
    for spec in config.organizations:
        detail = summary.as_detail(spec.slug)
        if detail:
            audit.record(
                AuditEvent.Kind.CONFIG_APPLIED,
                organization=Organization.objects.get(slug=spec.slug),
                detail={
                    "file": os.path.basename(config.filename),
                    "prune": prune,
                    "counts": detail,
                },
            )
    return summary


def _apply_organization(spec: OrganizationSpec, counts: Counter, prune: bool, User: Any) -> None:
    fields = {"name": spec.name} if spec.name is not None else {}
    org, outcome = services.organization_set(slug=spec.slug, defaults={"name": spec.slug}, **fields)
    counts["organizations", outcome] += 1
    users = _users(spec, User)

    for username, role in spec.members or []:
        _, outcome = services.membership_set(organization=org, user=users[username], role=role)
        counts["memberships", outcome] += 1

    groups = {g.name: g for g in org.groups.all()}
    if prune:
        # Grants go first, so a project relabelled below never meets a grant being dropped.
        for g in spec.groups:
            group = groups.get(g.name)
            if group is None:
                continue
            keep_projects = (
                None if g.projects is None else list(group.projects.filter(slug__in=g.projects))
            )
            keep_teams = None if g.teams is None else list(group.teams.filter(slug__in=g.teams))
            _, removed = services.group_set_grants(
                group=group, projects=keep_projects, teams=keep_teams, prune=True
            )
            counts["grants", "deleted"] += removed

    projects: dict[str, Project] = {}
    for p in spec.projects:
        fields = {k: getattr(p, k) for k in ("name", "environment") if getattr(p, k) is not None}
        project, outcome = services.project_set(
            organization=org, slug=p.slug, defaults={"name": p.slug}, **fields
        )
        counts["projects", outcome] += 1
        projects[p.slug] = project
        if p.members:
            added = services.members_add(
                manager=project.members, users=[users[u] for u in p.members]
            )
            counts["project members", "added"] += added
    projects.update({p.slug: p for p in org.projects.exclude(slug__in=list(projects))})

    teams: dict[str, Team] = {t.slug: t for t in org.teams.all()}
    for t in spec.teams:
        team, outcome = services.team_set(organization=org, slug=t.slug)
        counts["teams", outcome] += 1
        teams[t.slug] = team
        if t.members:
            added = services.members_add(manager=team.members, users=[users[u] for u in t.members])
            counts["team members", "added"] += added
        if t.projects:
            added = services.team_add_projects(
                team=team, projects=[projects[s] for s in t.projects]
            )
            counts["team projects", "added"] += added

    for g in spec.groups:
        group, outcome = services.group_set(organization=org, name=g.name, **g.fields)
        counts["groups", outcome] += 1
        added, _ = services.group_set_grants(
            group=group,
            projects=None if g.projects is None else [projects[s] for s in g.projects],
            teams=None if g.teams is None else [teams[s] for s in g.teams],
        )
        counts["grants", "added"] += added
        if g.variables is not None:
            _set_variables(
                g.variables,
                counts,
                "variables",
                prune,
                group.variables.all(),
                functools.partial(services.variable_set, group=group),
            )

    for p in spec.projects:
        if p.variables is not None:
            project = projects[p.slug]
            _set_variables(
                p.variables,
                counts,
                "project variables",
                prune,
                project.variables.all(),
                functools.partial(services.project_variable_set, project=project),
            )


def _set_variables(
    specs: list[VariableSpec], counts: Counter, thing: str, prune: bool, existing: Any, setter: Any
) -> None:
    flags = dict(existing.values_list("name", "is_secret"))
    for var in specs:
        # An absent `secret:` keeps an existing variable's flag: a file never silently
        # turns a secret public.
        secret = var.secret if var.secret is not None else flags.get(var.name, False)
        _, outcome = setter(name=var.name, value=var.value, is_secret=secret)
        counts[thing, outcome] += 1
    if prune:
        counts[thing, "deleted"] += services.definitions_prune(
            queryset=existing, keep=[v.name for v in specs]
        )


def _users(spec: OrganizationSpec, User: Any) -> dict[str, Any]:
    names = {u for u, _ in spec.members or []}
    for p in spec.projects:
        names.update(p.members or [])
    for t in spec.teams:
        names.update(t.members or [])
    return {
        user.get_username(): user
        for user in User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": names})
    }
