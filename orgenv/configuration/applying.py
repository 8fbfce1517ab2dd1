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
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from orgenv.audit import events as audit
from orgenv.resolution.impact import Impact, World, difference, resolve_project_in
from orgenv.selectors.reach import load_world, opened

from .. import services
from ..changes.operators import Touched, watching
from ..hygiene.public_values import findings_of
from ..models import (
    AuditEvent,
    Membership,
    Organization,
    Project,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
    starts_protected,
)
from ..notifications import endpoints
from ..notifications.models import WebhookEndpoint
from ..services import definitions
from ..services.bulk import rows_update
from ..validators import environment_guard_errors
from .validation import Config, OrganizationSpec, VariableSpec


@dataclass
class Summary:
    """What apply changed, per organization: counts[org][(thing, outcome)]."""

    counts: dict[str, Counter] = field(default_factory=dict)
    plan: dict[str, Impact] = field(default_factory=dict)  # org slug → what projects get
    # org slug → (project slug, variables, secrets) of each project the file creates
    created: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
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
            created = self.created.get(org, [])
            if not impact and not created:
                out.append(f"{org}: no project's environment changes.")
                continue
            if impact:
                out.append(f"{org}: {impact.headline()}")
            for project in impact.projects:
                out.append(f"  {org}/{project.project}:")
                out += [f"  {line}" for line in project.lines()]
            if created:
                # A new project's environment is all new: its size, not every name.
                n = len(created)
                out.append(f"{org}: {n} new project{'' if n == 1 else 's'}:")
                out += [
                    f"  {org}/{slug}: {count} variable{'' if count == 1 else 's'} "
                    f"({secrets} secret)"
                    for slug, count, secrets in created
                ]
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

    Every value is validated, and every new or changed one encrypted, and every stored value
    the file compares decrypted, before the transaction opens. Inside it the organization
    is read whole in a constant number of queries (`_Stored`) and written in bulk: a
    constant number of statements per kind of row (projects, teams, groups, their links,
    memberships, variables and the history of each), whatever the size of the file — so
    an apply, and a dry run of an unchanged file, cost the same number of queries for 5
    projects as for 3,000. The credential scan runs after it."""
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


THROUGH = {
    "project members": Project.members.through,
    "project teams": Project.teams.through,
    "team members": Team.members.through,
    "group projects": VariableGroup.projects.through,
    "group teams": VariableGroup.teams.through,
}


@dataclass
class _Stored:
    """One organization as stored, read in a constant number of queries: its projects,
    teams, groups and memberships, the links between them and its variables' rows."""

    projects: dict[str, Project] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    groups: dict[str, VariableGroup] = field(default_factory=dict)
    memberships: dict[int, Membership] = field(default_factory=dict)  # by user id
    links: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # THROUGH's pairs
    group_rows: dict[int, list[definitions.Stored]] = field(default_factory=dict)
    project_rows: dict[int, list[definitions.Stored]] = field(default_factory=dict)

    @classmethod
    def load(cls, org: Organization | None, *, links: bool = True) -> _Stored:
        stored = cls(links={kind: set() for kind in THROUGH})
        if org is None:
            return stored
        for kind, model in (("projects", Project), ("teams", Team)):
            found = {o.slug: o for o in model.objects.filter(organization=org).order_by()}
            setattr(stored, kind, found)
        stored.groups = {g.name: g for g in VariableGroup.objects.filter(organization=org)}
        for owned in (*stored.projects.values(), *stored.teams.values(), *stored.groups.values()):
            owned.organization = org  # read by the credential scan and the history user
        stored.group_rows = definitions.stored_rows(Variable, group__organization=org)
        stored.project_rows = definitions.stored_rows(ProjectVariable, project__organization=org)
        if links:
            stored.memberships = {
                m.user_id: m for m in Membership.objects.filter(organization=org).order_by()
            }
            for kind, through in THROUGH.items():
                own, other = _columns(through)
                stored.links[kind] = set(
                    through.objects.filter(**{f"{own}__organization": org}).values_list(
                        f"{own}_id", f"{other}_id"
                    )
                )
        return stored


def _columns(through: type) -> tuple[str, str]:
    """The through table's two foreign keys: the side the links belong to (a project's
    members, a team's members, a group's grants), then the other."""
    own = {
        Project.members.through: ("project", "user"),
        Project.teams.through: ("project", "team"),
        Team.members.through: ("team", "user"),
        VariableGroup.projects.through: ("variablegroup", "project"),
        VariableGroup.teams.through: ("variablegroup", "team"),
    }
    return own[through]


def _fields_changed(instance: Any, fields: dict[str, Any]) -> list[str]:
    changed = [name for name, value in fields.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, fields[name])
    return changed


def _clean(instance: Any, errors: list[str], what: str) -> None:
    """The field rules of full_clean (uniqueness is the file's and the lookup's business;
    the environment guard is checked on the whole result, `_Applier.guard`)."""
    try:
        instance.clean_fields(exclude=["organization"])
    except ValidationError as error:
        errors += [
            f"{what} ({name}): {message}"
            for name, messages in error.message_dict.items()
            for message in messages
        ]


class _Applier:
    """One organization: pruned grants first, then memberships, projects, teams and groups
    (grants need both ends), then variables; then one environment guard over the result,
    and the history of every row that changed, each kind written in bulk.

    Made before the transaction (validating, encrypting, decrypting and comparing what is
    stored); `apply` runs inside it."""

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
        self.generation = existing.generation if existing else None
        stored = _Stored.load(existing)
        self.project_variables = {
            p.slug: self.definitions(
                ProjectVariable, p.variables, stored.projects.get(p.slug), stored.project_rows
            )
            for p in spec.projects
            if p.variables is not None
        }
        self.group_variables = {
            g.name: self.definitions(
                Variable, g.variables, stored.groups.get(g.name), stored.group_rows
            )
            for g in spec.groups
            if g.variables is not None
        }
        # Planned once against the organization as it is now: when the file changes
        # something, what projects receive now is resolved here, before the transaction.
        # When nothing has changed the organization by the time the transaction holds it
        # (its generation, which every write replaces, is the same), this is the plan's
        # "before"; a file that changes nothing resolves nothing.
        self.org = existing or Organization(
            slug=spec.slug, allow_loader_names=bool(spec.allow_loader_names)
        )
        self.before = None
        if self.plan(stored) and existing is not None:
            self.before = opened(load_world(existing))

    def definitions(
        self,
        model: type,
        specs: list[VariableSpec],
        owner: Project | VariableGroup | None,
        rows: dict[int, list[definitions.Stored]],
    ) -> definitions.Definitions:
        # An absent `secret:` keeps an existing variable's flag: a file never silently turns
        # a secret public.
        wanted = definitions.Definitions(
            model,
            [definitions.Wanted(v.name, v.value, v.secret) for v in specs],
            prune=self.prune,
        )
        wanted.prepare(owner, rows.get(owner.pk, []) if owner is not None else [])
        return wanted

    def apply(self) -> None:
        spec = self.spec
        # Locked first, so that the plan's "before" is what this transaction changes.
        existing = (
            Organization.objects.select_for_update(no_key=True).filter(slug=spec.slug).first()
        )
        fields = {"name": spec.name} if spec.name is not None else {}
        if spec.allow_loader_names is not None:
            fields["allow_loader_names"] = spec.allow_loader_names
        self.org, outcome = services.organization_set(
            slug=spec.slug, defaults={"name": spec.slug}, **fields
        )
        changes = self.plan(_Stored.load(existing))
        self.counts["organizations", outcome] += 1
        if self.errors:
            raise ValidationError(self.errors)
        before = self.before
        if changes and (existing.generation if existing else None) != self.generation:
            before = opened(load_world(existing)) if existing else None
        self.guard()
        # A protected group changed by a command is notified as a forced change.
        with watching(existing, "apply_config") as watch:
            self.write()
        if watch.touched:
            self.summary.protected[spec.slug] = watch.touched
        if spec.webhooks is not None:
            self.apply_webhooks()
        if changes:
            # Not kept in the plaintext cache: a dry run rolls it back.
            after = opened(load_world(self.org), committed=False)
            self.summary.plan[spec.slug], self.summary.created[spec.slug] = _impact(before, after)
        else:
            self.summary.plan[spec.slug] = Impact(())
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

    def plan(self, stored: _Stored) -> bool:
        """Everything the file changes in the organization as `stored`, in memory (no
        query): whether it changes anything."""
        self.stored = stored
        self.counts.clear()
        self.plans = []
        self.errors: list[str] = []
        self.added: dict[str, list[tuple[Any, Any]]] = {kind: [] for kind in THROUGH}
        self.touched: dict[type, dict[int, Any]] = {Project: {}, Team: {}, VariableGroup: {}}
        self.created: set[tuple[type, int]] = set()
        self.apply_memberships()
        self.removed = self.prune_grants() if self.prune else {}
        self.apply_projects()
        self.apply_teams()
        self.apply_groups()
        self.variable_plans = self.plan_variables()
        return bool(
            self.new_memberships
            or self.changed_memberships
            or any(self.added.values())
            or any(self.removed.values())
            or any(self.touched.values())
            or any(p.created or p.updated or p.deleted for _, p in self.variable_plans)
        )

    # -- planning, in memory ----------------------------------------------------------------

    def touch(self, instance: Any, *, created: bool = False) -> None:
        self.touched[type(instance)][id(instance)] = instance
        if created:
            self.created.add((type(instance), id(instance)))

    def link(self, kind: str, own: Any, other: Any) -> bool:
        """Add the link unless it exists; the instance that owns it changes (its history)."""
        pair = (own.pk, other.pk) if own.pk and other.pk else None
        if pair is not None and pair in self.stored.links[kind]:
            return False
        self.added[kind].append((own, other))
        self.touch(own)
        if pair is not None:
            self.stored.links[kind].add(pair)
        return True

    def apply_memberships(self) -> None:
        self.new_memberships: list[Membership] = []
        self.changed_memberships: list[Membership] = []
        for username, role in self.spec.members or []:
            user = self.users[username]
            membership = self.stored.memberships.get(user.pk) if self.org.pk else None
            if membership is None:
                membership = Membership(
                    organization=self.org, user=user, role=role or Membership.Role.MEMBER
                )
                self.new_memberships.append(membership)
                self.stored.memberships[user.pk] = membership
                self.counts["memberships", "created"] += 1
            elif role and membership.role != role:
                membership.role = role
                self.changed_memberships.append(membership)
                self.counts["memberships", "updated"] += 1
            else:
                self.counts["memberships", "unchanged"] += 1

    def prune_grants(self) -> dict[str, set[tuple[int, int]]]:
        """Grants of listed groups to projects and teams the file no longer lists."""
        removed: dict[str, set[tuple[int, int]]] = {"group projects": set(), "group teams": set()}
        projects_by_id = {p.pk: p.slug for p in self.stored.projects.values()}
        teams_by_id = {t.pk: t.slug for t in self.stored.teams.values()}
        for g in self.spec.groups:
            group = self.stored.groups.get(g.name)
            if group is None:
                continue
            for kind, listed, names in (
                ("group projects", g.projects, projects_by_id),
                ("group teams", g.teams, teams_by_id),
            ):
                if listed is None:
                    continue
                keep = set(listed)
                for pair in [p for p in self.stored.links[kind] if p[0] == group.pk]:
                    if names[pair[1]] not in keep:
                        removed[kind].add(pair)
                        self.stored.links[kind].discard(pair)
                        self.touch(group)
        self.counts["grants", "deleted"] += sum(len(r) for r in removed.values())
        return removed

    def apply_projects(self) -> None:
        self.projects = self.stored.projects
        for p in self.spec.projects:
            fields = {
                k: getattr(p, k) for k in ("name", "environment") if getattr(p, k) is not None
            }
            project = self.projects.get(p.slug)
            if project is None:
                project = Project(
                    organization=self.org,
                    slug=p.slug,
                    **{"name": p.slug, "environment": "", **fields},
                )
                self.projects[p.slug] = project
                self.touch(project, created=True)
                self.counts["projects", "created"] += 1
                _clean(project, self.errors, f"project {p.slug}")
            elif _fields_changed(project, fields):
                self.touch(project)
                self.counts["projects", "updated"] += 1
                _clean(project, self.errors, f"project {p.slug}")
            else:
                self.counts["projects", "unchanged"] += 1
            for username in p.members or []:
                if self.link("project members", project, self.users[username]):
                    self.counts["project members", "added"] += 1

    def apply_teams(self) -> None:
        self.teams = self.stored.teams
        for t in self.spec.teams:
            team = self.teams.get(t.slug)
            if team is None:
                team = Team(organization=self.org, slug=t.slug)
                self.teams[t.slug] = team
                self.touch(team, created=True)
                self.counts["teams", "created"] += 1
                _clean(team, self.errors, f"team {t.slug}")
            else:
                self.counts["teams", "unchanged"] += 1
            for username in t.members or []:
                if self.link("team members", team, self.users[username]):
                    self.counts["team members", "added"] += 1
            for slug in t.projects or []:
                # A project's teams are the project's links (its history keeps them).
                if self.link("project teams", self.projects[slug], team):
                    self.counts["team projects", "added"] += 1

    def apply_groups(self) -> None:
        self.groups = self.stored.groups
        for g in self.spec.groups:
            group = self.groups.get(g.name)
            if group is None:
                # As services.group_set creates one: production starts protected.
                defaults = {"protected": starts_protected(g.fields.get("environment", ""))}
                group = VariableGroup(
                    organization=self.org, name=g.name, **{**defaults, **g.fields}
                )
                self.groups[g.name] = group
                self.touch(group, created=True)
                self.counts["groups", "created"] += 1
                _clean(group, self.errors, f"group {g.name}")
            elif _fields_changed(group, g.fields):
                self.touch(group)
                self.counts["groups", "updated"] += 1
                _clean(group, self.errors, f"group {g.name}")
            else:
                self.counts["groups", "unchanged"] += 1
            for slug in g.projects or []:
                if self.link("group projects", group, self.projects[slug]):
                    self.counts["grants", "added"] += 1
            for slug in g.teams or []:
                if self.link("group teams", group, self.teams[slug]):
                    self.counts["grants", "added"] += 1

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

    def plan_variables(self) -> list[tuple[str, definitions.Plan]]:
        """Each listed owner's variables planned against its rows as read in this
        transaction (the prepared plan when they are unchanged)."""
        plans = []
        allow = self.org.allow_loader_names
        for specs, owners, wanted_of, rows, thing in (
            (self.spec.projects, self.projects, self.project_variables, self.stored.project_rows,
             "project variables"),
            (self.spec.groups, self.groups, self.group_variables, self.stored.group_rows,
             "variables"),
        ):  # fmt: skip
            for item in specs:
                key = getattr(item, "slug", None) or item.name
                if item.variables is None:
                    continue
                owner = owners[key]
                try:
                    plan = wanted_of[key].plan(
                        owner,
                        allow_loader_names=allow,
                        rows=rows.get(owner.pk, []) if owner.pk else [],
                    )
                except ValidationError as error:
                    self.errors += [f"{key}: {m}" for m in error.messages]
                    continue
                for outcome, n in plan.counts.items():
                    self.counts[thing, outcome] += n
                self.plans.append((item.variables, plan))
                plans.append((thing, plan))
        return plans

    def guard(self) -> None:
        """The environment guard of orgenv.signals and the models' clean(), on the grants
        and labels as they will be: no labelled group selects a project of another label."""
        groups = {g.pk or id(g): g for g in self.groups.values()}
        projects = {p.pk or id(p): p for p in self.projects.values()}
        pairs = {(g, p) for g, p in self.stored.links["group projects"]}
        pairs |= {(g.pk or id(g), p.pk or id(p)) for g, p in self.added["group projects"]}
        errors = []
        for gid, pid in sorted(
            pairs, key=lambda pair: (groups[pair[0]].name, projects[pair[1]].slug)
        ):
            group, project = groups[gid], projects[pid]
            errors += environment_guard_errors(
                group.name, group.environment, [(project.slug, project.environment)]
            )
        if errors:
            raise ValidationError(errors)

    # -- writing, in bulk --------------------------------------------------------------------

    def write(self) -> None:
        for kind, pairs in self.removed.items():
            through = THROUGH[kind]
            own, other = _columns(through)
            by_owner: dict[int, list[int]] = {}
            for a, b in pairs:
                by_owner.setdefault(a, []).append(b)
            ids = [
                pk
                for pk, a, b in through.objects.filter(
                    **{f"{own}_id__in": list(by_owner)}
                ).values_list("id", f"{own}_id", f"{other}_id")
                if (a, b) in pairs
            ]
            for start in range(0, len(ids), definitions.BATCH_SIZE):
                through.objects.filter(pk__in=ids[start : start + definitions.BATCH_SIZE]).delete()
        if self.new_memberships:
            Membership.objects.bulk_create(self.new_memberships, batch_size=definitions.BATCH_SIZE)
            definitions.history_record(Membership, self.new_memberships, "+")
        if self.changed_memberships:
            rows_update(
                Membership, match=["id"], assign=["role"],
                rows=[[m.pk, m.role] for m in self.changed_memberships],
            )  # fmt: skip
            definitions.history_record(Membership, self.changed_memberships, "~")
        now = timezone.now()
        for model, assign in (
            (Project, ["name", "environment"]),
            (Team, []),
            (VariableGroup, ["description", "environment", "priority", "access", "max_age_days",
                             "protected", "required_approvals", "updated_at"]),
        ):  # fmt: skip
            touched = list(self.touched[model].values())
            if model is VariableGroup:
                for group in touched:
                    group.updated_at = now  # as a save would, so runners' ETags change
            new = [o for o in touched if o.pk is None]
            if new:
                model.objects.bulk_create(new, batch_size=definitions.BATCH_SIZE)
            old = [o for o in touched if (model, id(o)) not in self.created]
            if old and assign:
                rows_update(
                    model,
                    match=["id"],
                    assign=assign,
                    rows=[[o.pk, *(getattr(o, f) for f in assign)] for o in old],
                    batch_size=definitions.BATCH_SIZE,
                )
        for kind, pairs in self.added.items():
            if not pairs:
                continue
            through = THROUGH[kind]
            own, other = _columns(through)
            through.objects.bulk_create(
                [through(**{f"{own}_id": a.pk, f"{other}_id": b.pk}) for a, b in pairs],
                batch_size=definitions.BATCH_SIZE,
            )
        by_model: dict[str, list[definitions.Plan]] = {}
        for thing, plan in self.variable_plans:
            for definition in plan.created + plan.result:
                # An owner created above has its id now.
                owner = definition.group if thing == "variables" else definition.project
                setattr(definition, "group_id" if thing == "variables" else "project_id", owner.pk)
            by_model.setdefault(thing, []).append(plan)
        for thing, plans in by_model.items():
            model = Variable if thing == "variables" else ProjectVariable
            definitions.write(definitions.combined(plans, model))
        for model in (Project, Team, VariableGroup):
            touched = list(self.touched[model].values())
            for history_type in ("+", "~"):
                chosen = [
                    o for o in touched if ((model, id(o)) in self.created) == (history_type == "+")
                ]
                definitions.history_record_m2m(model, chosen, history_type)

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


def _impact(before: World | None, after: World) -> tuple[Impact, list[tuple[str, int, int]]]:
    """What the apply did to each project that existed (resolved before and after, one
    project at a time, so that memory holds two worlds and not every project's environment
    twice), and (slug, variables, secrets) of each project it created."""
    changed, created = [], []
    for slug, project in sorted(after.projects.items()):
        now = resolve_project_in(after, project)
        then = before.projects.get(slug) if before is not None else None
        if then is None:
            created.append((slug, len(now.variables), len(now.secrets)))
            continue
        changed += difference({slug: resolve_project_in(before, then)}, {slug: now}).projects
    return Impact(tuple(changed)), created


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
