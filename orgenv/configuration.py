"""Configuration as code: the YAML file of SPEC "Management commands", read with line
numbers, validated whole, then applied in one transaction.

Three steps, each usable alone:

- `load(text, filename)` parses YAML with a loader that remembers the line of every key and
  list item, so each error reads `FILE:LINE: path: problem`;
- `validate(data, filename)` checks the WHOLE file against the format, the name and value rules,
  the database (users, projects, teams that must exist) and the environment guard, and returns a
  `Config` or raises `ConfigInvalid` with every error — nothing has been written yet;
- `apply(config, prune=...)` makes the database match inside one transaction, through
  orgenv.services, and returns counts (never values).

What the file does not mention is left alone: an absent key keeps the current value (or the
model default for a new row), an absent list is not managed. `prune` deletes only what a
*listed* group or project no longer lists: variables of listed groups, grants (projects and
teams) of listed groups that give a `projects`/`teams` list, and project variables of listed
projects that give a `variables` list. It never deletes organizations, projects, teams, groups,
memberships or team/project members: those are too costly to lose to a typo.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from . import audit, services
from .models import AuditEvent, Membership, Organization, Project, Team, VariableGroup
from .validators import (
    environment_guard_errors,
    validate_environment_label,
    validate_variable_name,
    validate_variable_value,
)

# ---------------------------------------------------------------------------------------------
# Loading with line numbers


class Mapping(dict):
    """A YAML mapping that remembers its line, each key's line and any repeated key."""

    line: int = 0
    key_lines: dict[Any, int]
    repeated: list[tuple[Any, int]]


class Sequence(list):
    """A YAML sequence that remembers its line and each item's line."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Mapping:
    loader.flatten_mapping(node)
    mapping = Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines, mapping.repeated = {}, []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            key = str(key)
        if key == "value" and isinstance(value_node, yaml.ScalarNode):
            # A value is the text as written: `10` stays "10", `yes` stays "yes", `0755`
            # stays "0755" — YAML's typing would silently turn them into 10, True and 493.
            value = value_node.value
        else:
            value = loader.construct_object(value_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in mapping:
            mapping.repeated.append((key, line))
        mapping[key] = value
        mapping.key_lines[key] = line
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Sequence:
    sequence = Sequence(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
    return sequence


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


@dataclass(frozen=True, order=True)
class ConfigError:
    filename: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.filename}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigInvalid(Exception):
    """The file is wrong; `errors` lists every problem, str() gives one per line."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(set(errors))
        super().__init__("\n".join(str(e) for e in self.errors))


def load(text: str, filename: str = "config.yaml") -> Any:
    """Parse YAML safely, keeping line numbers (see Mapping and Sequence)."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigInvalid(
            [ConfigError(filename, line, "", f"invalid YAML: {problem}.")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigInvalid([ConfigError(filename, 1, "", f"invalid YAML: {exc}.")]) from None


# ---------------------------------------------------------------------------------------------
# The validated configuration


@dataclass
class VariableSpec:
    name: str
    value: str
    secret: bool | None  # None: keep an existing variable's flag (new ones are public)


@dataclass
class ProjectSpec:
    slug: str
    name: str | None = None
    environment: str | None = None
    members: list[str] | None = None
    variables: list[VariableSpec] | None = None


@dataclass
class TeamSpec:
    slug: str
    projects: list[str] | None = None
    members: list[str] | None = None


@dataclass
class GroupSpec:
    name: str
    fields: dict[str, Any] = field(default_factory=dict)  # description, environment, …
    projects: list[str] | None = None
    teams: list[str] | None = None
    variables: list[VariableSpec] | None = None


@dataclass
class OrganizationSpec:
    slug: str
    name: str | None = None
    members: list[tuple[str, str | None]] | None = None
    teams: list[TeamSpec] = field(default_factory=list)
    projects: list[ProjectSpec] = field(default_factory=list)
    groups: list[GroupSpec] = field(default_factory=list)


@dataclass
class Config:
    filename: str
    organizations: list[OrganizationSpec]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        dict: "a mapping",
        Mapping: "a mapping",
        list: "a list",
        Sequence: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


ORGANIZATION_KEYS = ("slug", "name", "members", "teams", "projects", "groups")
MEMBER_KEYS = ("user", "role")
TEAM_KEYS = ("slug", "projects", "members")
PROJECT_KEYS = ("slug", "name", "environment", "members", "variables")
GROUP_KEYS = (
    "name",
    "description",
    "environment",
    "priority",
    "access",
    "projects",
    "teams",
    "variables",
)
VARIABLE_KEYS = ("name", "value", "value_from_env", "secret")


class _Validator:
    """Walks the loaded data once, collecting every error with its line and path."""

    def __init__(self, filename: str, environ: MappingABC[str, str]) -> None:
        self.filename = filename
        self.environ = environ
        self.errors: list[ConfigError] = []

    def error(self, line: int, path: str, message: str) -> None:
        self.errors.append(ConfigError(self.filename, line, path, message))

    # -- shapes ---------------------------------------------------------------------------

    def mapping(
        self, data: Any, line: int, path: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> bool:
        if not isinstance(data, Mapping):
            self.error(line, path, f"expected a mapping, found {_kind(data)}.")
            return False
        for key, key_line in data.repeated:
            self.error(key_line, f"{path}.{key}", "this key is given twice.")
        for key in data:
            if key not in allowed:
                self.error(
                    data.key_lines[key],
                    _join(path, key),
                    f"unknown key {key!r}; expected one of: {', '.join(allowed)}.",
                )
        missing = [key for key in required if key not in data]
        for key in missing:
            self.error(data.line, path, f"{key!r} is required.")
        # Without its slug or name an entry cannot be checked further (or referred to).
        return not missing

    def items(self, data: Mapping, key: str, path: str) -> list[tuple[Any, int, str]] | None:
        """(item, line, path) of a list under `key`; None if the key is absent or not a list."""
        if key not in data:
            return None
        value, line = data[key], data.key_lines[key]
        if value is None:  # `key:` with nothing after it is an empty list
            return []
        if not isinstance(value, Sequence):
            self.error(line, _join(path, key), f"expected a list, found {_kind(value)}.")
            return None
        return [
            (item, item_line, f"{_join(path, key)}[{index}]")
            for index, (item, item_line) in enumerate(zip(value, value.item_lines, strict=True))
        ]

    def text(
        self,
        data: Mapping,
        key: str,
        path: str,
        *,
        max_length: int | None = None,
        validators: tuple[Any, ...] = (),
    ) -> str | None:
        if key not in data:
            return None
        value, line = data[key], data.key_lines[key]
        if not isinstance(value, str):
            self.error(line, f"{path}.{key}", f"expected text, found {_kind(value)}.")
            return None
        return self.check_text(value, line, f"{path}.{key}", max_length, validators)

    def check_text(
        self,
        value: Any,
        line: int,
        path: str,
        max_length: int | None = None,
        validators: tuple[Any, ...] = (),
    ) -> str | None:
        if not isinstance(value, str):
            self.error(line, path, f"expected text, found {_kind(value)}.")
            return None
        if max_length is not None and len(value) > max_length:
            self.error(line, path, f"at most {max_length} characters; this has {len(value)}.")
            return None
        for validator in validators:
            try:
                validator(value)
            except ValidationError as exc:
                self.error(line, path, " ".join(exc.messages))
                return None
        return value

    def slug(self, value: Any, line: int, path: str, max_length: int = 64) -> str | None:
        return self.check_text(value, line, path, max_length, (_slug_rule,))

    def names(self, data: Mapping, key: str, path: str, what: str) -> list[tuple[str, int]] | None:
        """A list of slugs or usernames, each once."""
        items = self.items(data, key, path)
        if items is None:
            return None
        seen: dict[str, int] = {}
        result = []
        for item, line, item_path in items:
            if not isinstance(item, str) or not item:
                self.error(line, item_path, f"expected {what}, found {_kind(item)}.")
                continue
            if item in seen:
                self.error(line, item_path, _twice(repr(item), seen[item]))
                continue
            seen[item] = line
            result.append((item, line))
        return result

    # -- the format -----------------------------------------------------------------------

    def variables(self, data: Mapping, path: str) -> list[tuple[VariableSpec, int]] | None:
        items = self.items(data, "variables", path)
        if items is None:
            return None
        result, seen = [], {}
        for item, line, item_path in items:
            if not self.mapping(item, line, item_path, VARIABLE_KEYS, ("name",)):
                continue
            name = self.text(item, "name", item_path, validators=(validate_variable_name,))
            if name is not None:
                if name in seen:
                    self.error(
                        item.key_lines["name"],
                        f"{item_path}.name",
                        f"{name!r} is defined twice (first on line {seen[name]}).",
                    )
                    name = None
                else:
                    seen[name] = item.key_lines["name"]
            value = self.variable_value(item, item_path, name)
            secret = None
            if "secret" in item:
                secret = item["secret"]
                if not isinstance(secret, bool):
                    self.error(
                        item.key_lines["secret"],
                        f"{item_path}.secret",
                        f"expected true or false, found {_kind(secret)}.",
                    )
                    secret = None
            if name is not None and value is not None:
                result.append((VariableSpec(name, value, secret), line))
        return result

    def variable_value(self, item: Mapping, path: str, name: str | None) -> str | None:
        if "value" in item and "value_from_env" in item:
            self.error(
                item.key_lines["value"], path, "give either 'value' or 'value_from_env', not both."
            )
            return None
        if "value" in item:
            line, where = item.key_lines["value"], f"{path}.value"
            value = item["value"]
            if not isinstance(value, str):
                self.error(line, where, f"expected text, found {_kind(value)}.")
                return None
        elif "value_from_env" in item:
            line, where = item.key_lines["value_from_env"], f"{path}.value_from_env"
            source = item["value_from_env"]
            if not isinstance(source, str) or not source:
                self.error(
                    line, where, f"expected an environment variable name, found {_kind(source)}."
                )
                return None
            if source not in self.environ:
                self.error(line, where, f"the environment variable {source} is not set.")
                return None
            value = self.environ[source]
        else:
            self.error(item.line, path, "'value' or 'value_from_env' is required.")
            return None
        try:
            validate_variable_value(value)
        except ValidationError as exc:
            # The rule, never the value: it may be a secret.
            self.error(line, where, " ".join(exc.messages))
            return None
        return value


def _twice(what: str, first_line: int) -> str:
    return f"{what} is listed twice (first on line {first_line})."


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _slug_rule(value: str) -> None:
    try:
        validate_slug(value)
    except ValidationError:
        raise ValidationError(
            f"{value!r} is not a valid slug: use letters, digits, '-' and '_'."
        ) from None


@dataclass
class _OrgState:
    """What the database already holds for one organization of the file."""

    exists: bool
    projects: dict[str, str]  # slug → environment
    teams: set[str]
    groups: dict[str, tuple[str, set[str]]]  # name → (environment, selected project slugs)


def _org_state(slug: str) -> _OrgState:
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        return _OrgState(False, {}, set(), {})
    projects = dict(Project.objects.filter(organization=org).values_list("slug", "environment"))
    teams = set(Team.objects.filter(organization=org).values_list("slug", flat=True))
    groups: dict[str, tuple[str, set[str]]] = {
        name: (env, set()) for name, env in org.groups.values_list("name", "environment")
    }
    through = VariableGroup.projects.through
    for name, project_slug in through.objects.filter(variablegroup__organization=org).values_list(
        "variablegroup__name", "project__slug"
    ):
        groups[name][1].add(project_slug)
    return _OrgState(True, projects, teams, groups)


def validate(
    data: Any,
    filename: str = "config.yaml",
    *,
    prune: bool = False,
    environ: MappingABC[str, str] | None = None,
) -> Config:
    """The whole file checked; ConfigInvalid lists every error. Reads, never writes."""
    v = _Validator(filename, os.environ if environ is None else environ)
    organizations: list[OrganizationSpec] = []
    if v.mapping(data, 1, "", ("organizations",), ("organizations",)):
        items = v.items(data, "organizations", "") or []
        seen: dict[str, int] = {}
        usernames: list[tuple[str, int, str]] = []  # every user reference, checked at once
        for item, line, path in items:
            spec = _organization(v, item, line, path, seen, usernames, prune)
            if spec is not None:
                organizations.append(spec)
        _check_users(v, usernames)
    if v.errors:
        raise ConfigInvalid(v.errors)
    return Config(filename, organizations)


def _check_users(v: _Validator, references: list[tuple[str, int, str]]) -> None:
    User = get_user_model()
    wanted = {name for name, _, _ in references}
    existing = set(
        User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": wanted}).values_list(
            User.USERNAME_FIELD, flat=True
        )
    )
    for name, line, path in references:
        if name not in existing:
            v.error(line, path, f"there is no user named {name!r}; create the user first.")


def _organization(
    v: _Validator,
    item: Any,
    line: int,
    path: str,
    seen: dict[str, int],
    usernames: list[tuple[str, int, str]],
    prune: bool,
) -> OrganizationSpec | None:
    if not v.mapping(item, line, path, ORGANIZATION_KEYS, ("slug",)):
        return None
    slug = v.slug(item.get("slug"), item.key_lines.get("slug", line), f"{path}.slug")
    if slug is None:
        return None
    if slug in seen:
        v.error(
            item.key_lines["slug"],
            f"{path}.slug",
            _twice(f"organization {slug!r}", seen[slug]),
        )
        return None
    seen[slug] = item.key_lines["slug"]
    spec = OrganizationSpec(slug, v.text(item, "name", path, max_length=200))
    state = _org_state(slug)

    member_items = v.items(item, "members", path)
    if member_items is not None:
        spec.members = []
        seen_users: dict[str, int] = {}
        for member, member_line, member_path in member_items:
            if isinstance(member, str):  # a bare username is a member
                member = Mapping(user=member)
                member.line, member.key_lines, member.repeated = (
                    member_line,
                    {"user": member_line},
                    [],
                )
            if not v.mapping(member, member_line, member_path, MEMBER_KEYS, ("user",)):
                continue
            user = v.text(member, "user", member_path)
            role = v.text(member, "role", member_path)
            if role is not None and role not in Membership.Role.values:
                v.error(
                    member.key_lines["role"],
                    f"{member_path}.role",
                    f"{role!r} is not a role; use admin or member.",
                )
                continue
            if not user:
                continue
            if user in seen_users:
                v.error(
                    member_line,
                    f"{member_path}.user",
                    _twice(f"user {user!r}", seen_users[user]),
                )
                continue
            seen_users[user] = member_line
            usernames.append((user, member.key_lines["user"], f"{member_path}.user"))
            spec.members.append((user, role))

    # Projects first: teams and groups refer to them.
    project_lines: dict[str, int] = {}
    environments = dict(state.projects)  # slug → environment after apply
    env_lines: dict[str, int] = {}
    for project, project_line, project_path in v.items(item, "projects", path) or []:
        if not v.mapping(project, project_line, project_path, PROJECT_KEYS, ("slug",)):
            continue
        project_slug = v.slug(
            project.get("slug"), project.key_lines.get("slug", project_line), f"{project_path}.slug"
        )
        if project_slug is None:
            continue
        if project_slug in project_lines:
            v.error(
                project.key_lines["slug"],
                f"{project_path}.slug",
                _twice(f"project {project_slug!r}", project_lines[project_slug]),
            )
            continue
        project_lines[project_slug] = project.key_lines["slug"]
        p = ProjectSpec(
            project_slug,
            name=v.text(project, "name", project_path, max_length=200),
            environment=v.text(
                project,
                "environment",
                project_path,
                max_length=64,
                validators=(validate_environment_label,),
            ),
        )
        if p.environment is not None:
            environments[project_slug] = p.environment
            env_lines[project_slug] = project.key_lines["environment"]
        else:
            environments.setdefault(project_slug, "")
        members = v.names(project, "members", project_path, "a username")
        if members is not None:
            p.members = [name for name, _ in members]
            usernames += [(name, ln, f"{project_path}.members") for name, ln in members]
        variables = v.variables(project, project_path)
        p.variables = None if variables is None else [var for var, _ in variables]
        spec.projects.append(p)
    known_projects = set(environments)

    team_lines: dict[str, int] = {}
    for team, team_line, team_path in v.items(item, "teams", path) or []:
        if not v.mapping(team, team_line, team_path, TEAM_KEYS, ("slug",)):
            continue
        team_slug = v.slug(
            team.get("slug"), team.key_lines.get("slug", team_line), f"{team_path}.slug"
        )
        if team_slug is None:
            continue
        if team_slug in team_lines:
            v.error(
                team.key_lines["slug"],
                f"{team_path}.slug",
                _twice(f"team {team_slug!r}", team_lines[team_slug]),
            )
            continue
        team_lines[team_slug] = team.key_lines["slug"]
        t = TeamSpec(team_slug)
        projects = v.names(team, "projects", team_path, "a project slug")
        if projects is not None:
            t.projects = [name for name, _ in projects]
            for name, ln in projects:
                if name not in known_projects:
                    v.error(ln, f"{team_path}.projects", _no_such("project", name, slug))
        members = v.names(team, "members", team_path, "a username")
        if members is not None:
            t.members = [name for name, _ in members]
            usernames += [(name, ln, f"{team_path}.members") for name, ln in members]
        spec.teams.append(t)
    known_teams = state.teams | set(team_lines)

    group_lines: dict[str, int] = {}
    for group, group_line, group_path in v.items(item, "groups", path) or []:
        found = _group(
            v, group, group_line, group_path, group_lines, slug, known_projects, known_teams
        )
        if found is None:
            continue
        g, listed = found
        spec.groups.append(g)
        # The environment guard on the state after apply: listed projects, plus the grants
        # the group keeps (all of them unless --prune replaces them by the list).
        environment = g.fields.get("environment", state.groups.get(g.name, ("", set()))[0])
        kept = (
            set()
            if (prune and g.projects is not None)
            else state.groups.get(g.name, ("", set()))[1]
        )
        for project_slug in sorted(set(listed) | kept):
            for message in environment_guard_errors(
                g.name, environment, [(project_slug, environments.get(project_slug, ""))]
            ):
                if project_slug in listed:
                    v.error(listed[project_slug], f"{group_path}.projects", message)
                else:
                    v.error(
                        group.key_lines.get("environment", group_line),
                        group_path,
                        f"{message} (an existing grant: remove it in the admin or list the "
                        "group's projects and use --prune)",
                    )
    # Groups the file does not list keep their grants: a project relabelled by the file must
    # still pass their guard.
    for name, (environment, selected) in state.groups.items():
        if name in group_lines:
            continue
        for project_slug in sorted(selected & set(env_lines)):
            for message in environment_guard_errors(
                name, environment, [(project_slug, environments[project_slug])]
            ):
                v.error(env_lines[project_slug], f"{path}.projects", message)
    return spec


def _no_such(what: str, name: str, org: str) -> str:
    return f"there is no {what} {name!r} in organization {org!r}, in this file or in the database."


def _group(
    v: _Validator,
    group: Any,
    line: int,
    path: str,
    seen: dict[str, int],
    org: str,
    known_projects: set[str],
    known_teams: set[str],
) -> tuple[GroupSpec, dict[str, int]] | None:
    """The group, and the line of each listed project that exists (for guard errors)."""
    if not v.mapping(group, line, path, GROUP_KEYS, ("name",)):
        return None
    name = v.check_text(
        group.get("name"), group.key_lines.get("name", line), f"{path}.name", 100, (_slug_rule,)
    )
    if name is None:
        return None
    if name in seen:
        v.error(
            group.key_lines["name"],
            f"{path}.name",
            _twice(f"group {name!r}", seen[name]),
        )
        return None
    seen[name] = group.key_lines["name"]
    g = GroupSpec(name)
    description = v.text(group, "description", path)
    if description is not None:
        g.fields["description"] = description
    environment = v.text(
        group, "environment", path, max_length=64, validators=(validate_environment_label,)
    )
    if environment is not None:
        g.fields["environment"] = environment
    if "priority" in group:
        priority = group["priority"]
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not -(2**31) <= priority < 2**31
        ):
            v.error(
                group.key_lines["priority"],
                f"{path}.priority",
                f"expected a whole number, found {_kind(priority)}.",
            )
        else:
            g.fields["priority"] = priority
    access = v.text(group, "access", path)
    if access is not None:
        if access not in VariableGroup.Access.values:
            v.error(
                group.key_lines["access"],
                f"{path}.access",
                f"{access!r} is not an access; use all or selected.",
            )
        else:
            g.fields["access"] = access
    projects = v.names(group, "projects", path, "a project slug")
    listed: dict[str, int] = {}
    if projects is not None:
        g.projects = [p for p, _ in projects]
        for p, ln in projects:
            if p not in known_projects:
                v.error(ln, f"{path}.projects", _no_such("project", p, org))
        listed = {p: ln for p, ln in projects if p in known_projects}
    teams = v.names(group, "teams", path, "a team slug")
    if teams is not None:
        g.teams = [t for t, _ in teams]
        for t, ln in teams:
            if t not in known_teams:
                v.error(ln, f"{path}.teams", _no_such("team", t, org))
    variables = v.variables(group, path)
    g.variables = None if variables is None else [var for var, _ in variables]
    return g, listed


def read(path: str, *, prune: bool = False, environ: MappingABC[str, str] | None = None) -> Config:
    """Load and validate a file; OSError and UnicodeError become one-line ConfigInvalid errors."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigInvalid(
            [ConfigError(path, 1, "", f"cannot read the file: {reason}.")]
        ) from None
    return validate(load(text, path), path, prune=prune, environ=environ)


# ---------------------------------------------------------------------------------------------
# Applying


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
