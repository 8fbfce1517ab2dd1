"""Exporting: the current state of organizations as an `apply_config` file.

The output is stable (everything sorted, no timestamp) so that two exports of the same state
are byte for byte equal and diff well in a repository. Secrets are written without a value
(`{name: X, secret: true}`), which apply_config reads as "keep the current value", and
webhooks without their signing secrets (kept likewise); so
`export_config | apply_config` plans no change. Every string is double-quoted by PyYAML
itself, so any value (multi-line, `#`, `: `, `true`, non-ASCII) reads back exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import yaml

from ..models import Membership, Organization, Project, Team, VariableGroup, WebhookEndpoint


def _q(text: str) -> str:
    dumped = yaml.safe_dump(text, default_style='"', width=float("inf"), allow_unicode=True)
    return dumped.rstrip("\n").removesuffix("\n...")


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _variables(rows: Iterable[tuple[str, str, bool]], indent: str) -> list[str]:
    """`variables:` and one flow mapping per variable; a secret never carries its value."""
    rows = sorted(rows)
    if not rows:
        return [f"{indent}variables: []"]
    lines = [f"{indent}variables:"]
    for name, value, is_secret in rows:
        if is_secret:
            lines.append(f"{indent}  - {{name: {_q(name)}, secret: true}}")
        else:
            lines.append(f"{indent}  - {{name: {_q(name)}, value: {_q(value)}}}")
    return lines


def _group_comment(group: VariableGroup) -> str:
    if group.environment:
        return (
            f"# {group.name}: environment {group.environment!s} — reaches only projects "
            f"labelled {group.environment}"
        )
    return f"# {group.name}: no environment — reaches projects of any label"


def export_organization(org: Organization) -> list[str]:
    lines = [f"  - slug: {_q(org.slug)}", f"    name: {_q(org.name)}"]

    members = sorted(
        Membership.objects.filter(organization=org).values_list("user__username", "role")
    )
    lines.append("    members:" if members else "    members: []")
    lines += [f"      - {{user: {_q(u)}, role: {_q(r)}}}" for u, r in members]

    teams = list(Team.objects.filter(organization=org).order_by("slug"))
    team_projects: dict[int, list[str]] = defaultdict(list)
    for tid, slug in Project.teams.through.objects.filter(team__organization=org).values_list(
        "team_id", "project__slug"
    ):
        team_projects[tid].append(slug)
    team_members: dict[int, list[str]] = defaultdict(list)
    for tid, username in Team.members.through.objects.filter(team__organization=org).values_list(
        "team_id", "user__username"
    ):
        team_members[tid].append(username)
    lines.append("    teams:" if teams else "    teams: []")
    for team in teams:
        lines.append(
            f"      - {{slug: {_q(team.slug)}, projects: {_list(sorted(team_projects[team.pk]))}, "
            f"members: {_list(sorted(team_members[team.pk]))}}}"
        )

    projects = list(
        Project.objects.filter(organization=org).order_by("slug").prefetch_related("variables")
    )
    project_members: dict[int, list[str]] = defaultdict(list)
    for pid, username in Project.members.through.objects.filter(
        project__organization=org
    ).values_list("project_id", "user__username"):
        project_members[pid].append(username)
    lines.append("    projects:" if projects else "    projects: []")
    for project in projects:
        lines += [
            f"      - slug: {_q(project.slug)}",
            f"        name: {_q(project.name)}",
            f"        environment: {_q(project.environment)}",
            f"        members: {_list(sorted(project_members[project.pk]))}",
        ]
        lines += _variables(
            ((v.name, v.value, v.is_secret) for v in project.variables.all()), "        "
        )

    groups = list(
        VariableGroup.objects.filter(organization=org)
        .order_by("name")
        .prefetch_related("variables", "projects", "teams")
    )
    lines.append("    groups:" if groups else "    groups: []")
    for group in groups:
        lines += [
            f"      {_group_comment(group)}",
            f"      - name: {_q(group.name)}",
            f"        description: {_q(group.description)}",
            f"        environment: {_q(group.environment)}",
            f"        priority: {group.priority}",
            f"        access: {_q(group.access)}",
            f"        protected: {'true' if group.protected else 'false'}",
            f"        required_approvals: {group.required_approvals}",
            f"        projects: {_list(sorted(p.slug for p in group.projects.all()))}",
            f"        teams: {_list(sorted(t.slug for t in group.teams.all()))}",
        ]
        lines += _variables(
            ((v.name, v.value, v.is_secret) for v in group.variables.all()), "        "
        )

    webhooks = list(WebhookEndpoint.objects.filter(organization=org).order_by("name"))
    if webhooks:
        lines.append(
            "    # Webhooks without their signing secrets: an apply keeps the current one "
            "(secret_from_env: NAME sets one)."
        )
    lines.append("    webhooks:" if webhooks else "    webhooks: []")
    for hook in webhooks:
        lines += [
            f"      - name: {_q(hook.name)}",
            f"        url: {_q(hook.url)}",
            f"        events: {_list(hook.events)}",
            f"        format: {_q(hook.format)}",
            f"        enabled: {'true' if hook.enabled else 'false'}",
        ]
    return lines


def export(organizations: Iterable[Organization]) -> str:
    """The apply_config YAML of these organizations, in slug order."""
    lines = [
        "# orgenv configuration (python manage.py export_config). Secrets are listed without",
        "# their values: apply_config keeps the current value of a secret the file leaves out.",
        "organizations:",
    ]
    for org in sorted(organizations, key=lambda o: o.slug):
        lines += export_organization(org)
    return "\n".join(lines) + "\n"
