"""Validation of the whole file: the format, the name and value rules, references to users,
projects and teams (in the file or the database) and the environment guard on the state the
file would produce. It reads the database and never writes; every error carries its line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from collections.abc import Mapping as MappingABC
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from ..models import (
    MAX_APPROVALS,
    Membership,
    Organization,
    Project,
    ProjectVariable,
    Team,
    Variable,
    VariableGroup,
)
from ..validators import (
    environment_guard_errors,
    validate_environment_label,
    validate_loader_name,
    validate_variable_name,
    validate_variable_value,
)
from .loading import ConfigError, ConfigInvalid, Mapping, Sequence

# The errors a file is reported with, at most (the others are counted).
MAX_ERRORS = 1_000
# A variable listed without a value keeps its current one (how export_config writes secrets);
# a new variable needs one, which the organization reader checks against the database.
KEEP = None


@dataclass
class VariableSpec:
    name: str
    value: str | None  # None (KEEP): keep the current value
    secret: bool | None  # None: keep an existing variable's flag (new ones are public)
    line: int = 0  # where the value is written, for warnings about it


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
class WebhookSpec:
    name: str
    url: str
    events: list[str]
    format: str = "standard"
    secret: str | None = None  # from the environment variable secret_from_env; never the file
    secret_from_env: str | None = None
    enabled: bool | None = None  # None: a new endpoint is enabled, an existing one keeps it


@dataclass
class OrganizationSpec:
    slug: str
    name: str | None = None
    allow_loader_names: bool | None = None  # None: keep the organization's setting
    members: list[tuple[str, str | None]] | None = None
    teams: list[TeamSpec] = field(default_factory=list)
    projects: list[ProjectSpec] = field(default_factory=list)
    groups: list[GroupSpec] = field(default_factory=list)
    webhooks: list[WebhookSpec] | None = None  # None: endpoints left as they are


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


ORGANIZATION_KEYS = (
    "slug",
    "name",
    "allow_loader_names",
    "members",
    "teams",
    "projects",
    "groups",
    "webhooks",
)
WEBHOOK_KEYS = ("name", "url", "events", "format", "secret_from_env", "enabled")
MEMBER_KEYS = ("user", "role")
TEAM_KEYS = ("slug", "projects", "members")
PROJECT_KEYS = ("slug", "name", "environment", "members", "variables")
GROUP_KEYS = (
    "name",
    "description",
    "environment",
    "priority",
    "access",
    "max_age_days",
    "protected",
    "required_approvals",
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
        self.more = 0

    def error(self, line: int, path: str, message: str) -> None:
        # A file of a million wrong entries is reported by its first errors, not a million.
        if len(self.errors) >= MAX_ERRORS:
            self.more += 1
            return
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

    def variables(
        self, data: Mapping, path: str, *, allow_loader_names: bool
    ) -> list[tuple[VariableSpec, int]] | None:
        items = self.items(data, "variables", path)
        if items is None:
            return None
        result, seen = [], {}
        for item, line, item_path in items:
            if not self.mapping(item, line, item_path, VARIABLE_KEYS, ("name",)):
                continue
            rules = (validate_variable_name, _loader_rule(allow_loader_names))
            name = self.text(item, "name", item_path, validators=rules)
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
            if name is not None and (value is not KEEP or not _has_value_key(item)):
                value_line = item.key_lines.get("value", item.key_lines.get("value_from_env", line))
                result.append((VariableSpec(name, value, secret, value_line), line))
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
            if source in settings.ORGENV_SERVER_ENV_NAMES:
                self.error(
                    line,
                    where,
                    f"{source} is a setting of the orgenv server itself (its secrets and "
                    "the names in its .env); a file may not copy it into a variable.",
                )
                return None
            if source not in self.environ:
                self.error(line, where, f"the environment variable {source} is not set.")
                return None
            value = self.environ[source]
        else:
            return KEEP
        try:
            validate_variable_value(value)
        except ValidationError as exc:
            # The rule, never the value: it may be a secret.
            self.error(line, where, " ".join(exc.messages))
            return None
        return value


def _loader_rule(allowed: bool) -> Any:
    def rule(name: str) -> None:
        validate_loader_name(name, allowed=allowed)

    return rule


def _has_value_key(item: Mapping) -> bool:
    return "value" in item or "value_from_env" in item


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

    projects: dict[str, str]  # slug → environment
    teams: set[str]
    groups: dict[str, tuple[str, set[str]]]  # name → (environment, selected project slugs)
    # (group name or "", project slug or "") → names of its variables: those a file may list
    # without a value
    defined: set[tuple[str, str, str]] = field(default_factory=set)
    allow_loader_names: bool = False

    @classmethod
    def load(cls, slug: str) -> _OrgState:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            return cls({}, set(), {})
        defined = {
            (group, "", name)
            for group, name in Variable.objects.filter(group__organization=org).values_list(
                "group__name", "name"
            )
        } | {
            ("", project, name)
            for project, name in ProjectVariable.objects.filter(
                project__organization=org
            ).values_list("project__slug", "name")
        }
        groups: dict[str, tuple[str, set[str]]] = {
            name: (env, set()) for name, env in org.groups.values_list("name", "environment")
        }
        grants = VariableGroup.projects.through.objects.filter(variablegroup__organization=org)
        for name, project_slug in grants.values_list("variablegroup__name", "project__slug"):
            groups[name][1].add(project_slug)
        return cls(
            dict(Project.objects.filter(organization=org).values_list("slug", "environment")),
            set(Team.objects.filter(organization=org).values_list("slug", flat=True)),
            groups,
            defined,
            org.allow_loader_names,
        )


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
        seen: dict[str, int] = {}
        usernames: list[tuple[str, int, str]] = []  # every user reference, checked at once
        for item, line, path in v.items(data, "organizations", "") or []:
            if not v.mapping(item, line, path, ORGANIZATION_KEYS, ("slug",)):
                continue
            slug = v.slug(item["slug"], item.key_lines["slug"], f"{path}.slug")
            if slug is None:
                continue
            if slug in seen:
                v.error(
                    item.key_lines["slug"],
                    f"{path}.slug",
                    _twice(f"organization {slug!r}", seen[slug]),
                )
                continue
            seen[slug] = item.key_lines["slug"]
            reader = _OrganizationReader(v, item, path, slug, prune)
            organizations.append(reader.read())
            usernames += reader.usernames
        _check_users(v, usernames)
    if v.errors:
        raise ConfigInvalid(v.errors, v.more)
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


def _no_such(what: str, name: str, org: str) -> str:
    return f"there is no {what} {name!r} in organization {org!r}, in this file or in the database."


class _OrganizationReader:
    """One organization entry: members, then projects (teams and groups refer to them), then
    teams, then groups, then the environment guard on the resulting grants."""

    def __init__(self, v: _Validator, item: Mapping, path: str, slug: str, prune: bool) -> None:
        self.v, self.item, self.path, self.slug, self.prune = v, item, path, slug, prune
        self.state = _OrgState.load(slug)
        self.spec = OrganizationSpec(slug, v.text(item, "name", path, max_length=200))
        self.spec.allow_loader_names = self.flag("allow_loader_names")
        self.allow_loader_names = (
            self.state.allow_loader_names
            if self.spec.allow_loader_names is None
            else self.spec.allow_loader_names
        )
        self.usernames: list[tuple[str, int, str]] = []
        self.environments = dict(self.state.projects)  # slug → environment after apply
        self.relabelled: dict[str, int] = {}  # project slug → line of its environment key

    def flag(self, key: str) -> bool | None:
        if key not in self.item:
            return None
        value = self.item[key]
        if not isinstance(value, bool):
            where = f"{self.path}.{key}"
            self.v.error(
                self.item.key_lines[key], where, f"expected true or false, found {_kind(value)}."
            )
            return None
        return value

    def read(self) -> OrganizationSpec:
        self.members()
        self.projects()
        self.teams()
        self.groups()
        self.webhooks()
        return self.spec

    def entries(
        self, key: str, keys: tuple[str, ...], identity: str, max_length: int = 64
    ) -> Iterator[tuple[Mapping, str, str]]:
        """(entry, identity, path) of each well-formed entry of a list, each identity once."""
        v, seen = self.v, {}
        for entry, line, path in v.items(self.item, key, self.path) or []:
            if not v.mapping(entry, line, path, keys, (identity,)):
                continue
            where = entry.key_lines[identity]
            value = v.check_text(
                entry[identity], where, f"{path}.{identity}", max_length, (_slug_rule,)
            )
            if value is None:
                continue
            if value in seen:
                what = f"{key.rstrip('s')} {value!r}"
                v.error(where, f"{path}.{identity}", _twice(what, seen[value]))
                continue
            seen[value] = where
            yield entry, value, path

    def user_list(self, entry: Mapping, path: str) -> list[str] | None:
        members = self.v.names(entry, "members", path, "a username")
        if members is None:
            return None
        self.usernames += [(name, line, f"{path}.members") for name, line in members]
        return [name for name, _ in members]

    def members(self) -> None:
        v = self.v
        items = v.items(self.item, "members", self.path)
        if items is None:
            return
        self.spec.members, seen = [], {}
        for member, line, path in items:
            if isinstance(member, str):  # a bare username is a member
                member = Mapping(user=member)
                member.line, member.key_lines, member.repeated = line, {"user": line}, []
            if not v.mapping(member, line, path, MEMBER_KEYS, ("user",)):
                continue
            user = v.text(member, "user", path)
            role = v.text(member, "role", path)
            if role is not None and role not in Membership.Role.values:
                v.error(
                    member.key_lines["role"],
                    f"{path}.role",
                    f"{role!r} is not a role; use admin or member.",
                )
                continue
            if not user:
                continue
            if user in seen:
                v.error(line, f"{path}.user", _twice(f"user {user!r}", seen[user]))
                continue
            seen[user] = line
            self.usernames.append((user, member.key_lines["user"], f"{path}.user"))
            self.spec.members.append((user, role))

    def projects(self) -> None:
        v = self.v
        for entry, slug, path in self.entries("projects", PROJECT_KEYS, "slug"):
            project = ProjectSpec(
                slug,
                name=v.text(entry, "name", path, max_length=200),
                environment=v.text(
                    entry,
                    "environment",
                    path,
                    max_length=64,
                    validators=(validate_environment_label,),
                ),
            )
            if project.environment is not None:
                self.environments[slug] = project.environment
                self.relabelled[slug] = entry.key_lines["environment"]
            else:
                self.environments.setdefault(slug, "")
            project.members = self.user_list(entry, path)
            variables = v.variables(entry, path, allow_loader_names=self.allow_loader_names)
            self.check_kept(variables, ("", slug), path)
            project.variables = None if variables is None else [var for var, _ in variables]
            self.spec.projects.append(project)

    def check_kept(
        self, variables: list[tuple[VariableSpec, int]] | None, owner: tuple[str, str], path: str
    ) -> None:
        """A variable without a value keeps its current one: it must have one already."""
        for index, (var, line) in enumerate(variables or []):
            if var.value is KEEP and (*owner, var.name) not in self.state.defined:
                self.v.error(
                    line,
                    f"{path}.variables[{index}]",
                    f"a value is required for a new variable ({var.name} is not defined there "
                    "yet); give 'value' or 'value_from_env'.",
                )

    def references(
        self, entry: Mapping, key: str, path: str, known: AbstractSet[str]
    ) -> dict[str, int]:
        """Slugs listed under `key` that exist (with their lines); the others are errors."""
        listed = self.v.names(entry, key, path, f"a {key.rstrip('s')} slug")
        if listed is None:
            return {}
        for name, line in listed:
            if name not in known:
                self.v.error(line, f"{path}.{key}", _no_such(key.rstrip("s"), name, self.slug))
        return {name: line for name, line in listed if name in known}

    def teams(self) -> None:
        for entry, slug, path in self.entries("teams", TEAM_KEYS, "slug"):
            team = TeamSpec(slug, members=self.user_list(entry, path))
            if "projects" in entry:
                team.projects = list(
                    self.references(entry, "projects", path, self.environments.keys())
                )
            self.spec.teams.append(team)

    def groups(self) -> None:
        v = self.v
        known_teams = self.state.teams | {t.slug for t in self.spec.teams}
        listed_groups = set()
        for entry, name, path in self.entries("groups", GROUP_KEYS, "name", max_length=100):
            listed_groups.add(name)
            group = GroupSpec(name)
            description = v.text(entry, "description", path)
            if description is not None:
                group.fields["description"] = description
            environment = v.text(
                entry, "environment", path, max_length=64, validators=(validate_environment_label,)
            )
            if environment is not None:
                group.fields["environment"] = environment
            if "priority" in entry:
                priority = entry["priority"]
                if isinstance(priority, bool) or not isinstance(priority, int):
                    v.error(
                        entry.key_lines["priority"],
                        f"{path}.priority",
                        f"expected a whole number, found {_kind(priority)}.",
                    )
                elif not -(2**31) <= priority < 2**31:
                    v.error(entry.key_lines["priority"], f"{path}.priority", "out of range.")
                else:
                    group.fields["priority"] = priority
            if "max_age_days" in entry:
                days = entry["max_age_days"]
                if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
                    v.error(
                        entry.key_lines["max_age_days"],
                        f"{path}.max_age_days",
                        f"expected a whole number of days, found {_kind(days)}.",
                    )
                elif days is not None and not 1 <= days < 2**31:
                    v.error(
                        entry.key_lines["max_age_days"],
                        f"{path}.max_age_days",
                        "at least 1 day (leave it out, or null, for no maximum).",
                    )
                else:
                    group.fields["max_age_days"] = days
            if "protected" in entry:
                protected = entry["protected"]
                if not isinstance(protected, bool):
                    v.error(
                        entry.key_lines["protected"],
                        f"{path}.protected",
                        f"expected true or false, found {_kind(protected)}.",
                    )
                else:
                    group.fields["protected"] = protected
            if "required_approvals" in entry:
                approvals = entry["required_approvals"]
                if isinstance(approvals, bool) or not isinstance(approvals, int):
                    v.error(
                        entry.key_lines["required_approvals"],
                        f"{path}.required_approvals",
                        f"expected a whole number of approvals, found {_kind(approvals)}.",
                    )
                elif not 1 <= approvals <= MAX_APPROVALS:
                    v.error(
                        entry.key_lines["required_approvals"],
                        f"{path}.required_approvals",
                        f"from 1 to {MAX_APPROVALS} approvals.",
                    )
                else:
                    group.fields["required_approvals"] = approvals
            access = v.text(entry, "access", path)
            if access is not None and access not in VariableGroup.Access.values:
                v.error(
                    entry.key_lines["access"],
                    f"{path}.access",
                    f"{access!r} is not an access; use all or selected.",
                )
            elif access is not None:
                group.fields["access"] = access
            listed: dict[str, int] = {}
            if "projects" in entry:
                listed = self.references(entry, "projects", path, self.environments.keys())
                group.projects = list(listed)
            if "teams" in entry:
                group.teams = list(self.references(entry, "teams", path, known_teams))
            variables = v.variables(entry, path, allow_loader_names=self.allow_loader_names)
            self.check_kept(variables, (name, ""), path)
            group.variables = None if variables is None else [var for var, _ in variables]
            self.spec.groups.append(group)
            self.guard_listed_group(group, entry, path, listed)
        self.guard_unlisted_groups(listed_groups)

    def webhooks(self) -> None:
        """Webhook endpoints: name, url, events, format, enabled, and the signing secret only
        as the name of an environment variable (secret_from_env), never its text."""
        from orgenv.notifications import endpoints, events
        from orgenv.notifications.sending import url_problem

        v = self.v
        if "webhooks" not in self.item:
            return
        self.spec.webhooks = []
        for entry, name, path in self.entries("webhooks", WEBHOOK_KEYS, "name"):
            url = v.text(entry, "url", path, max_length=2000)
            if url is None:
                v.error(entry.line, f"{path}.url", "required: the https:// address to post to.")
            elif (problem := url_problem(url)) is not None:
                v.error(entry.key_lines["url"], f"{path}.url", problem)
                url = None
            chosen = v.names(entry, "events", path, "an event name")
            if chosen is None:
                v.error(entry.line, f"{path}.events", "required: the list of events to send.")
            elif not chosen:
                v.error(entry.key_lines["events"], f"{path}.events", "list at least one event.")
                chosen = None
            else:
                for event, line in chosen:
                    if event not in events.WEBHOOK_EVENTS:
                        v.error(
                            line,
                            f"{path}.events",
                            f"{event!r} is not an event; use one of "
                            f"{', '.join(events.WEBHOOK_EVENTS)}.",
                        )
                        chosen = None
                        break
            format_ = v.text(entry, "format", path) or "standard"
            if format_ not in ("standard", "slack"):
                v.error(
                    entry.key_lines["format"],
                    f"{path}.format",
                    f"{format_!r} is not a format; use standard or slack.",
                )
            enabled = entry.get("enabled")
            if enabled is not None and not isinstance(enabled, bool):
                v.error(
                    entry.key_lines["enabled"],
                    f"{path}.enabled",
                    f"expected true or false, found {_kind(enabled)}.",
                )
            spec = WebhookSpec(
                name, url or "", [e for e, _ in chosen or []], format_, enabled=enabled
            )
            variable = v.text(entry, "secret_from_env", path)
            if variable is not None:
                spec.secret_from_env = variable
                where = (entry.key_lines["secret_from_env"], f"{path}.secret_from_env")
                if variable in settings.ORGENV_SERVER_ENV_NAMES:
                    v.error(
                        *where,
                        f"{variable} is a setting of the orgenv server itself; a webhook's "
                        "secret has its own variable.",
                    )
                elif variable not in v.environ:
                    v.error(*where, f"the environment variable {variable} is not set.")
                else:
                    try:
                        endpoints.validate_secret(v.environ[variable])
                    except ValidationError as error:
                        v.error(*where, f"{variable}: {' '.join(error.messages)}")
                    else:
                        spec.secret = v.environ[variable]
            self.spec.webhooks.append(spec)

    def guard_listed_group(
        self, group: GroupSpec, entry: Mapping, path: str, listed: dict[str, int]
    ) -> None:
        """The environment guard on the grants the group will have: the listed projects, plus
        the existing ones it keeps (all of them unless --prune replaces them by the list)."""
        current_env, current = self.state.groups.get(group.name, ("", set()))
        environment = group.fields.get("environment", current_env)
        kept = set() if (self.prune and group.projects is not None) else current
        for slug in sorted(set(listed) | kept):
            pair = [(slug, self.environments.get(slug, ""))]
            for message in environment_guard_errors(group.name, environment, pair):
                if slug in listed:
                    self.v.error(listed[slug], f"{path}.projects", message)
                else:
                    self.v.error(
                        entry.key_lines.get("environment", entry.line),
                        path,
                        f"{message} (an existing grant: remove it in the admin, or list the "
                        "group's projects and use --prune)",
                    )

    def guard_unlisted_groups(self, listed_groups: set[str]) -> None:
        # Groups the file does not list keep their grants: a project the file relabels must
        # still pass their guard.
        for name, (environment, selected) in self.state.groups.items():
            if name in listed_groups:
                continue
            for slug in sorted(selected & self.relabelled.keys()):
                pair = [(slug, self.environments[slug])]
                for message in environment_guard_errors(name, environment, pair):
                    self.v.error(self.relabelled[slug], f"{self.path}.projects", message)
