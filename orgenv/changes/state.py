"""A group's state as change requests see it: its fields, grants and variables (values as
stored tokens, never decrypted to be shown), its version, and the difference between two
states — what a request proposes, in names only.

`delta(before, after)` is what a save changed; `proposed(current, request)` is the state a
request would leave the group in, so that a request is judged, updated and applied against
the group as it is now."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Max

from orgenv.crypto import Ciphertext, DecryptionError, decrypt, stored_token
from orgenv.models import ProposedVariable, Variable, VariableGroup

# The group's own fields a request may change, in the order the diff lists them.
FIELDS = (
    "name",
    "description",
    "environment",
    "priority",
    "access",
    "max_age_days",
    "protected",
    "required_approvals",
)
LABELS = {"max_age_days": "maximum age (days)", "required_approvals": "required approvals"}


@dataclass(frozen=True)
class Stored:
    """A variable as stored: its value's token (Ciphertext, never opened here but to
    compare), its flags."""

    token: Ciphertext | None  # None: the request removes it
    is_secret: bool = False
    not_a_secret: bool = False


@dataclass(frozen=True)
class Snapshot:
    fields: dict[str, Any]
    projects: dict[int, str]  # id → slug
    teams: dict[int, str]
    variables: dict[str, Stored]


@dataclass
class Delta:
    fields: dict[str, Any] = field(default_factory=dict)
    projects_added: list[list] = field(default_factory=list)  # [[id, slug], …]
    projects_removed: list[list] = field(default_factory=list)
    teams_added: list[list] = field(default_factory=list)
    teams_removed: list[list] = field(default_factory=list)
    variables: dict[str, Stored] = field(default_factory=dict)  # token None: removed
    diff: list[list[str]] = field(default_factory=list)  # [[what, name, change], …]

    def __bool__(self) -> bool:
        return bool(self.diff)

    @property
    def names(self) -> list[str]:
        """The variable names concerned (for notifications: names only)."""
        return sorted(self.variables)


def group_version(group_id: int) -> str:
    """The group's version: its newest history row and its variables' newest, so that any
    recorded change to the group, a grant or a variable (by any path: the workspace, a
    command, a restore) makes a new version. Key rotation changes no version."""
    return group_versions([group_id]).get(group_id, "0.0")


def group_versions(group_ids: list[int]) -> dict[int, str]:
    """group_version of several groups, in two queries."""
    groups = dict(
        VariableGroup.history.filter(id__in=group_ids)
        .values("id")
        .annotate(m=Max("history_id"))
        .values_list("id", "m")
    )
    variables = dict(
        Variable.history.filter(group_id__in=group_ids)
        .values("group_id")
        .annotate(m=Max("history_id"))
        .values_list("group_id", "m")
    )
    return {pk: f"{groups.get(pk) or 0}.{variables.get(pk) or 0}" for pk in group_ids}


def snapshot(group_id: int) -> Snapshot | None:
    """The group as stored now (in the caller's transaction); None when it is gone."""
    fields = VariableGroup.objects.filter(pk=group_id).values(*FIELDS).first()
    if fields is None:
        return None
    grants = VariableGroup.projects.through.objects.filter(variablegroup_id=group_id)
    teams = VariableGroup.teams.through.objects.filter(variablegroup_id=group_id)
    rows = (
        Variable.objects.filter(group_id=group_id)
        .annotate(token=stored_token("value"))
        .values_list("name", "token", "is_secret", "not_a_secret")
    )
    return Snapshot(
        fields,
        dict(grants.values_list("project_id", "project__slug")),
        dict(teams.values_list("team_id", "team__slug")),
        {name: Stored(Ciphertext(token), s, n) for name, token, s, n in rows},
    )


def same_value(a: Ciphertext, b: Ciphertext) -> bool:
    """Whether two tokens hold the same text (compared here, never shown)."""
    if a == b:
        return True
    try:
        return decrypt(a) == decrypt(b)
    except DecryptionError:
        return False


def _variable_change(before: Stored | None, after: Stored) -> str:
    if after.token is None:
        return "removed"
    if before is None:
        return "added (secret)" if after.is_secret else "added"
    parts = []
    if not same_value(before.token, after.token):
        parts.append("value changed")
    if before.is_secret != after.is_secret:
        parts.append("now secret" if after.is_secret else "no longer secret")
    if before.not_a_secret != after.not_a_secret and not parts:
        parts.append("credential warning silenced" if after.not_a_secret else "warning restored")
    return ", ".join(parts)


def _field_change(name: str, old: Any, new: Any) -> str:
    if name == "description":
        return "changed"
    if isinstance(new, bool):
        return f"{'yes' if old else 'no'} → {'yes' if new else 'no'}"
    return f"{old if old not in (None, '') else '—'} → {new if new not in (None, '') else '—'}"


def delta(before: Snapshot, after: Snapshot) -> Delta:
    """What turns `before` into `after`, and its diff in names (never a value)."""
    out = Delta()
    for name in FIELDS:
        if before.fields[name] != after.fields[name]:
            out.fields[name] = after.fields[name]
            label = LABELS.get(name, name)
            out.diff.append(
                ["group", label, _field_change(name, before.fields[name], after.fields[name])]
            )
    for kind, old, new, added, removed in (
        ("project", before.projects, after.projects, out.projects_added, out.projects_removed),
        ("team", before.teams, after.teams, out.teams_added, out.teams_removed),
    ):
        for pk in sorted(new.keys() - old.keys(), key=new.get):
            added.append([pk, new[pk]])
            out.diff.append(["grant", f"{kind} {new[pk]}", "granted"])
        for pk in sorted(old.keys() - new.keys(), key=old.get):
            removed.append([pk, old[pk]])
            out.diff.append(["grant", f"{kind} {old[pk]}", "no longer granted"])
    for name in sorted(before.variables.keys() | after.variables.keys()):
        old, new = before.variables.get(name), after.variables.get(name, Stored(None))
        if old is None and new.token is None:
            continue
        change = _variable_change(old, new)
        if change:
            out.variables[name] = new
            out.diff.append(["variable", name, change])
    return out


def proposed(current: Snapshot, request: Any) -> Snapshot:
    """The state `request` (a ChangeRequest) would leave the group in, from `current`."""
    projects = {pk: slug for pk, slug in current.projects.items()}
    for pk, _ in request.projects_removed:
        projects.pop(pk, None)
    projects.update({pk: slug for pk, slug in request.projects_added})
    teams = {pk: slug for pk, slug in current.teams.items()}
    for pk, _ in request.teams_removed:
        teams.pop(pk, None)
    teams.update({pk: slug for pk, slug in request.teams_added})
    variables = dict(current.variables)
    for name, stored in proposed_variables(request).items():
        if stored.token is None:
            variables.pop(name, None)
        else:
            variables[name] = stored
    return replace(
        current, fields={**current.fields, **request.fields}, projects=projects, teams=teams,
        variables=variables,
    )  # fmt: skip


def proposed_variables(request: Any) -> dict[str, Stored]:
    rows = (
        ProposedVariable.objects.filter(request=request)
        .annotate(token=stored_token("value"))
        .values_list("name", "token", "is_secret", "not_a_secret")
    )
    return {
        name: Stored(None if token is None else Ciphertext(token), s, n)
        for name, token, s, n in rows
    }
