"""An organization as the pure impact preview sees it (orgenv.resolution.impact.World).

Eight queries whatever the size of the organization: teams, projects, their team links,
groups, their project and team grants, group variables, project variables. Values are decrypted for
comparison only (the preview never prints a secret); `decrypt=False` keeps the stored tokens,
for callers that need names, flags and reach but no value (the "why" answer). `plaintexts`
(token → plaintext) remembers what was decrypted: `apply_config` loads the organization
before its transaction and again inside it, where only tokens written since are decrypted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orgenv import crypto
from orgenv.models import Organization, Project, ProjectVariable, Team, Variable, VariableGroup
from orgenv.resolution.impact import Entry, GroupState, ProjectState, World
from orgenv.resolution.why import Why, explain_name


def _value(
    token: str, table: str, row: int, decrypt: bool, plaintexts: dict[str, Any] | None
) -> str:
    if not decrypt:
        return token
    plaintext = None if plaintexts is None else plaintexts.get(token)
    if plaintext is None:
        try:
            plaintext = crypto.decrypt(token, table=table, row=row)
        except crypto.DecryptionError:
            plaintext = crypto.Undecryptable(table, "value", token, row)
        if plaintexts is not None:
            plaintexts[token] = plaintext
    if isinstance(plaintext, crypto.Undecryptable):
        # Compared and shown as what it is, so that the apply that repairs it can run.
        return crypto.Undecryptable(table, "value", row=row).describe()
    return plaintext


def load_world(
    organization: Organization, *, decrypt: bool = True, plaintexts: dict[str, Any] | None = None
) -> World:
    org = organization.pk
    team_slugs = dict(Team.objects.filter(organization_id=org).values_list("id", "slug"))
    project_rows = list(
        Project.objects.filter(organization_id=org).values_list("id", "slug", "environment")
    )
    project_slugs = {pid: slug for pid, slug, _ in project_rows}
    project_teams: dict[int, set[str]] = defaultdict(set)
    for pid, tid in Project.teams.through.objects.filter(project__organization_id=org).values_list(
        "project_id", "team_id"
    ):
        project_teams[pid].add(team_slugs[tid])
    project_variables: dict[int, dict[str, Entry]] = defaultdict(dict)
    table = ProjectVariable._meta.db_table
    for row, pid, name, is_secret, token in ProjectVariable.objects.filter(
        project__organization_id=org
    ).values_list("id", "project_id", "name", "is_secret", crypto.stored_token("value")):
        project_variables[pid][name] = Entry(
            _value(token, table, row, decrypt, plaintexts), bool(is_secret)
        )

    group_rows = list(
        VariableGroup.objects.filter(organization_id=org).values_list(
            "id", "name", "priority", "environment", "access"
        )
    )
    selected: dict[int, set[str]] = defaultdict(set)
    for gid, pid in VariableGroup.projects.through.objects.filter(
        variablegroup__organization_id=org
    ).values_list("variablegroup_id", "project_id"):
        selected[gid].add(project_slugs[pid])
    granted_teams: dict[int, set[str]] = defaultdict(set)
    for gid, tid in VariableGroup.teams.through.objects.filter(
        variablegroup__organization_id=org
    ).values_list("variablegroup_id", "team_id"):
        granted_teams[gid].add(team_slugs[tid])
    variables: dict[int, dict[str, Entry]] = defaultdict(dict)
    table = Variable._meta.db_table
    for row, gid, name, is_secret, token in Variable.objects.filter(
        group__organization_id=org
    ).values_list("id", "group_id", "name", "is_secret", crypto.stored_token("value")):
        variables[gid][name] = Entry(
            _value(token, table, row, decrypt, plaintexts), bool(is_secret)
        )

    return World(
        projects={
            slug: ProjectState(
                slug, environment, frozenset(project_teams[pid]), project_variables[pid]
            )
            for pid, slug, environment in project_rows
        },
        groups={
            name: GroupState(
                name,
                priority,
                environment,
                access,
                frozenset(selected[gid]),
                frozenset(granted_teams[gid]),
                variables[gid],
            )
            for gid, name, priority, environment, access in group_rows
        },
    )


def why_name(project: Project, name: str) -> Why:
    """Why NAME reaches the project or not (orgenv.resolution.why), from the organization as
    it is now; no value is decrypted."""
    world = load_world(project.organization, decrypt=False)
    return explain_name(world, project.organization.slug, project.slug, name)
