"""Applying a validated configuration: one short transaction, through orgenv.services,
counting what changed (never values), recording one audit event per organization that
changed, and planning what it did to every project's effective environment (the impact
preview: the organization is resolved before and after, inside the transaction, so a dry run
that rolls back plans exactly what a real apply does)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from orgenv.audit import events as audit
from orgenv.resolution.impact import Impact, difference, resolve_world
from orgenv.selectors.reach import load_world, opened

from .. import services
from ..changes.operators import Touched, watching
from ..hygiene.public_values import findings_of
from ..models import (
    AuditEvent,
    Organization,
    Project,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
)
from ..notifications import endpoints
from ..notifications.models import WebhookEndpoint
from ..services import definitions
from .validation import Config, OrganizationSpec, VariableSpec


@dataclass
class Summary:
    """What apply changed, per organization: counts[org][(thing, outcome)]."""

    counts: dict[str, Counter] = field(default_factory=dict)
    plan: dict[str, Impact] = field(default_factory=dict)  # org slug → what projects get
    # `FILE:LINE: NAME is public but looks like a credential (rule)`: never the value.
    warnings: list[str] = field(default_factory=list)
    # org slug → the protected groups changed, with the names (orgenv.changes.operators).
    protected: dict[str, list[Touched]] = field(default_factory=dict)
    # `acme/deploy: whsec_…`: the signing secrets generated for new webhooks, printed once.
    secrets: list[str] = field(default_factory=list, repr=False)

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
        for (thing, outcome), n in sorted(self.counts[org].items(), key=_summary_order):
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

    def protected_lines(self) -> list[str]:
        """The protected groups changed: applied directly, notified like forced changes."""
        return [
            f"{org}/{t.group} (protected)" + (f": {', '.join(t.names)}" if t.names else "")
            for org, touched in self.protected.items()
            for t in touched
        ]

    def plan_lines(self) -> list[str]:
        """Per organization, each affected project and what changes in its environment
        (a secret reads "value changed"), with conflicts appearing and disappearing."""
        out = []
        for org, impact in self.plan.items():
            if not impact:
                out.append(f"{org}: no project's environment changes.")
                continue
            out.append(f"{org}: {impact.headline()}")
            for project in impact.projects:
                out.append(f"  {org}/{project.project}:")
                out += [f"  {line}" for line in project.lines()]
        return out


THINGS = [
    "organizations",
    "memberships",
    "projects",
    "project members",
    "project variables",
    "teams",
    "team members",
    "team projects",
    "groups",
    "grants",
    "variables",
    "webhooks",
]
OUTCOMES = ["created", "added", "updated", "deleted", "unchanged"]


def _summary_order(item: tuple[tuple[str, str], int]) -> tuple[int, int]:
    (thing, outcome), _ = item
    return THINGS.index(thing), OUTCOMES.index(outcome)


class _DryRun(Exception):
    """Rolls the write transaction back once its effect is planned."""


def apply(config: Config, *, prune: bool = False, dry_run: bool = False) -> Summary:
    """Make the database match a validated configuration, all or nothing; with dry_run, plan
    the same change and roll it back.

    Every value is validated and encrypted, and every stored value decrypted for comparison,
    before the transaction opens; inside it, organizations, projects, teams, groups and
    grants are written through orgenv.services and variables in bulk
    (orgenv.services.definitions), so the organization row stays locked only for a short
    write, however many variables change. The credential scan runs after it."""
    summary = Summary()
    appliers = [_Applier(spec, summary, prune, config.filename) for spec in config.organizations]
    try:
        with transaction.atomic():
            for applier in appliers:
                applier.apply()
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    for applier in appliers:
        summary.warnings += applier.warnings()
    return summary


class _Applier:
    """One organization, in an order that keeps every guard satisfied on the way: pruned
    grants go first (a project relabelled next never meets a grant about to go), then
    projects, teams and groups (grants need both ends), then variables.

    Made before the transaction (validating, encrypting, decrypting and comparing what is
    stored, resolving the organization as it is); `apply` runs inside it."""

    def __init__(
        self,
        spec: OrganizationSpec,
        summary: Summary,
        prune: bool,
        filename: str,
    ) -> None:
        self.spec, self.summary, self.prune, self.filename = spec, summary, prune, filename
        self.counts = summary.counts.setdefault(spec.slug, Counter())
        self.users = _users(spec)
        self.plans: list[tuple[list[VariableSpec], definitions.Plan]] = []
        existing = Organization.objects.filter(slug=spec.slug).first()
        # The organization as it is now, resolved before the transaction: when nothing has
        # changed it by the time the transaction holds it (its generation, which every write
        # replaces, is the same), this is the plan's "before".
        self.generation = existing.generation if existing else None
        self.before = resolve_world(opened(load_world(existing))) if existing else {}
        projects = {p.slug: p for p in existing.projects.all()} if existing else {}
        groups = {g.name: g for g in existing.groups.all()} if existing else {}
        self.project_variables = {
            p.slug: self.definitions(ProjectVariable, p.variables, projects.get(p.slug))
            for p in spec.projects
            if p.variables is not None
        }
        self.group_variables = {
            g.name: self.definitions(Variable, g.variables, groups.get(g.name))
            for g in spec.groups
            if g.variables is not None
        }

    def definitions(
        self, model: type, specs: list[VariableSpec], owner: Project | VariableGroup | None
    ) -> definitions.Definitions:
        # An absent `secret:` keeps an existing variable's flag: a file never silently turns
        # a secret public.
        wanted = definitions.Definitions(
            model,
            [definitions.Wanted(v.name, v.value, v.secret) for v in specs],
            prune=self.prune,
        )
        wanted.prepare(owner)
        return wanted

    def apply(self) -> None:
        spec = self.spec
        # Locked first, so that the plan's "before" is what this transaction changes.
        existing = (
            Organization.objects.select_for_update(no_key=True).filter(slug=spec.slug).first()
        )
        before = self.before
        if (existing.generation if existing else None) != self.generation:
            before = resolve_world(opened(load_world(existing))) if existing else {}
        with watching(existing, "apply_config") as watch:
            self.write(spec, existing, before)
        if watch.touched:
            self.summary.protected[spec.slug] = watch.touched

    def write(self, spec: OrganizationSpec, existing: Organization | None, before: dict) -> None:
        fields = {"name": spec.name} if spec.name is not None else {}
        if spec.allow_loader_names is not None:
            fields["allow_loader_names"] = spec.allow_loader_names
        self.org, outcome = services.organization_set(
            slug=spec.slug, defaults={"name": spec.slug}, **fields
        )
        self.counts["organizations", outcome] += 1
        for username, role in spec.members or []:
            _, outcome = services.membership_set(
                organization=self.org, user=self.users[username], role=role
            )
            self.counts["memberships", outcome] += 1
        if self.prune:
            self.prune_grants()
        self.apply_projects()
        self.apply_teams()
        self.apply_groups()
        if spec.webhooks is not None:
            self.apply_webhooks()
        # Not kept in the plaintext cache: a dry run rolls it back.
        after = resolve_world(opened(load_world(self.org), committed=False))
        self.summary.plan[spec.slug] = difference(before, after)
        detail = self.summary.as_detail(spec.slug)
        if detail:  # an apply that changes nothing leaves no trace, like it leaves no history
            audit.record(
                AuditEvent.Kind.CONFIG_APPLIED,
                organization=self.org,
                detail={
                    "file": os.path.basename(self.filename),
                    "prune": self.prune,
                    "counts": detail,
                },
            )

    def prune_grants(self) -> None:
        groups = {g.name: g for g in self.org.groups.all()}
        for g in self.spec.groups:
            group = groups.get(g.name)
            if group is None:
                continue
            # Keeping only the listed subset of the current grants removes the others.
            _, removed = services.group_set_grants(
                group=group,
                projects=None if g.projects is None else group.projects.filter(slug__in=g.projects),
                teams=None if g.teams is None else group.teams.filter(slug__in=g.teams),
                prune=True,
            )
            self.counts["grants", "deleted"] += removed

    def apply_projects(self) -> None:
        self.projects: dict[str, Project] = {p.slug: p for p in self.org.projects.all()}
        for p in self.spec.projects:
            fields = {
                k: getattr(p, k) for k in ("name", "environment") if getattr(p, k) is not None
            }
            project, outcome = services.project_set(
                organization=self.org, slug=p.slug, defaults={"name": p.slug}, **fields
            )
            self.counts["projects", outcome] += 1
            self.projects[p.slug] = project
            if p.members:
                users = [self.users[u] for u in p.members]
                added = services.members_add(manager=project.members, users=users)
                self.counts["project members", "added"] += added
            if p.variables is not None:
                self.set_variables(
                    self.project_variables[p.slug], p.variables, "project variables", project
                )

    def apply_teams(self) -> None:
        self.teams: dict[str, Team] = {t.slug: t for t in self.org.teams.all()}
        for t in self.spec.teams:
            team, outcome = services.team_set(organization=self.org, slug=t.slug)
            self.counts["teams", outcome] += 1
            self.teams[t.slug] = team
            if t.members:
                users = [self.users[u] for u in t.members]
                self.counts["team members", "added"] += services.members_add(
                    manager=team.members, users=users
                )
            if t.projects:
                projects = [self.projects[s] for s in t.projects]
                self.counts["team projects", "added"] += services.team_add_projects(
                    team=team, projects=projects
                )

    def apply_groups(self) -> None:
        for g in self.spec.groups:
            group, outcome = services.group_set(organization=self.org, name=g.name, **g.fields)
            self.counts["groups", outcome] += 1
            added, _ = services.group_set_grants(
                group=group,
                projects=None if g.projects is None else [self.projects[s] for s in g.projects],
                teams=None if g.teams is None else [self.teams[s] for s in g.teams],
            )
            self.counts["grants", "added"] += added
            if g.variables is not None:
                self.set_variables(self.group_variables[g.name], g.variables, "variables", group)

    def apply_webhooks(self) -> None:
        """Endpoints by name: created (with the secret of secret_from_env, or a new one,
        printed once), updated, rotated to a new secret_from_env (the previous one signs for
        24 hours), removed with --prune when the file no longer lists them."""
        current = {e.name: e for e in WebhookEndpoint.objects.filter(organization=self.org)}
        for w in self.spec.webhooks or []:
            endpoint = current.pop(w.name, None)
            fields = {"name": w.name, "url": w.url, "events": w.events, "format": w.format}
            if endpoint is None:
                endpoint, secret = endpoints.endpoint_create(
                    organization=self.org,
                    secret=w.secret,
                    enabled=w.enabled is not False,
                    **fields,
                )
                if w.secret is None:
                    self.summary.secrets.append(f"{self.org.slug}/{w.name}: {secret}")
                self.counts["webhooks", "created"] += 1
                continue
            before = (endpoint.url, endpoint.events, endpoint.format, endpoint.enabled)
            endpoints.endpoint_update(endpoint=endpoint, **fields)
            if w.enabled is not None:
                endpoints.endpoint_set_enabled(endpoint=endpoint, enabled=w.enabled)
            rotated = w.secret is not None and w.secret != endpoint.secret
            if rotated:
                endpoints.endpoint_rotate(endpoint=endpoint, secret=w.secret)
            after = (endpoint.url, endpoint.events, endpoint.format, endpoint.enabled)
            changed = rotated or before != after
            self.counts["webhooks", "updated" if changed else "unchanged"] += 1
        if self.prune:
            for endpoint in current.values():
                endpoints.endpoint_delete(endpoint=endpoint)
                self.counts["webhooks", "deleted"] += 1

    def set_variables(
        self,
        wanted: definitions.Definitions,
        specs: list[VariableSpec],
        thing: str,
        owner: Project | VariableGroup,
    ) -> None:
        plan = wanted.plan(owner, allow_loader_names=self.org.allow_loader_names)
        definitions.write(plan)
        for outcome, n in plan.counts.items():
            self.counts[thing, outcome] += n
        self.plans.append((specs, plan))

    def warnings(self) -> list[str]:
        """Public values of the file that look like credentials, in the file's order."""
        found = []
        for specs, plan in self.plans:
            lines = {v.name: v.line for v in specs}
            for finding in findings_of(plan.result):
                found.append(
                    f"{self.filename}:{lines[finding.name]}: {finding.name} is public but "
                    f"looks like a credential ({finding.rules}); mark it secret: true."
                )
        return found


def _users(spec: OrganizationSpec) -> dict[str, Any]:
    User = get_user_model()
    names = {u for u, _ in spec.members or []}
    for p in spec.projects:
        names.update(p.members or [])
    for t in spec.teams:
        names.update(t.members or [])
    return {
        user.get_username(): user
        for user in User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": names})
    }
