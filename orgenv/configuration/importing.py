"""Dotenv text into a group's variables: the rules of `import_env`, shared by the command and
the admin's Paste .env, so both accept and refuse exactly the same input.

- `read` parses (configuration.dotenv) and checks every entry with the rules of every write
  path (orgenv.validators), collecting every problem with its line; nothing is written.
- `proposed_secret` says why a name or value looks secret (the admin pre-ticks those; the
  command warns about them), never quoting the value.
- `variables_import` writes all entries or none, in one short transaction, keeps an existing
  secret secret, and records one audit event naming the variables (never a value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction

from orgenv import services
from orgenv.audit import events as audit
from orgenv.changes.operators import watching
from orgenv.configuration import dotenv
from orgenv.models import AuditEvent, Organization, Variable, VariableGroup
from orgenv.services import definitions
from orgenv.validators import (
    validate_loader_name,
    validate_variable_name,
    validate_variable_value,
)


class ImportRefused(Exception):
    """Every problem of the text, each with its line; nothing was changed."""

    def __init__(self, problems: list[dotenv.Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("; ".join(f"line {p.line}: {p.message}" for p in self.problems))


def read(text: str, filename: str = "<pasted>", *, allow_loader_names: bool) -> list[dotenv.Entry]:
    """The entries of dotenv text, or ImportRefused listing every bad line: syntax, names and
    values that break the rules (runner-loader names unless the organization allows them),
    names set twice."""
    try:
        entries = dotenv.parse(text, filename)
    except dotenv.DotenvError as exc:
        raise ImportRefused(list(exc.problems)) from None
    problems: list[dotenv.Problem] = []
    first_line: dict[str, int] = {}
    for entry in entries:
        for validate, subject in (
            (validate_variable_name, entry.name),
            (partial(validate_loader_name, allowed=allow_loader_names), entry.name),
            (validate_variable_value, entry.value),
        ):
            try:
                validate(subject)
            except ValidationError as error:
                problems.append(dotenv.Problem(entry.line, " ".join(error.messages)))
        if entry.name in first_line:
            problems.append(
                dotenv.Problem(
                    entry.line,
                    f"{entry.name} is set twice (first on line {first_line[entry.name]}).",
                )
            )
        first_line.setdefault(entry.name, entry.line)
    if problems:
        raise ImportRefused(problems)
    return entries


# Words that make a name a credential: at the end (API_KEY, DB_PASS) or anywhere (SECRET).
_SECRET_LAST = {"KEY", "APIKEY", "PASS", "PWD", "DSN", "AUTH"}
_SECRET_ANY = {"SECRET", "PASSWORD", "PASSWD", "TOKEN", "PRIVATE", "CREDENTIAL", "CREDENTIALS"}
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")


def proposed_secret(name: str, value: str) -> str:
    """Why NAME=value looks like a secret ("the name ends with _KEY", "the value is a URL
    with a password"), or "" when it does not. A proposal: the admin decides."""
    words = name.upper().split("_")
    if words[-1] in _SECRET_LAST | _SECRET_ANY:
        return f"the name ends with _{words[-1]}" if len(words) > 1 else f"the name is {name}"
    found = [w for w in words if w in _SECRET_ANY]
    if found:
        return f"the name contains {found[0]}"
    if "ACCESS" in words and "KEY" in words:
        return "the name is an access key"
    if _URL_WITH_PASSWORD.match(value):
        return "the value is a URL with a password"
    if value.startswith("-----BEGIN") and "PRIVATE KEY" in value[:100]:
        return "the value is a private key"
    return ""


def variables_import(
    *,
    group: VariableGroup,
    entries: Iterable[dotenv.Entry],
    secret: Iterable[str] = (),
    all_secret: bool = False,
    source: str = "",
    command: str | None = None,
) -> dict[str, list[str]]:
    """Create or update the group's variables from `entries`, all or nothing. New variables
    are secret when named in `secret` (or with all_secret); an existing secret stays secret.
    Returns the names by outcome (created, updated, unchanged).

    Values are validated, encrypted and compared first; then one short transaction, holding
    the organization row (FOR NO KEY UPDATE: resolutions go on), compares again with the
    rows as they then are and writes them in bulk (orgenv.services.definitions). `command`
    (import_env) notifies a change to a protected group (orgenv.changes.operators)."""
    wanted_secret = set(secret)
    wanted = definitions.Definitions(
        Variable,
        [
            definitions.Wanted(
                entry.name, entry.value, True if all_secret or entry.name in wanted_secret else None
            )
            for entry in entries
        ],
    )
    wanted.prepare(group)  # decrypted and compared outside the transaction
    with transaction.atomic():
        organization = (
            Organization.objects.select_for_update(no_key=True)
            .only("allow_loader_names")
            .get(pk=group.organization_id)
        )
        plan = wanted.plan(group, allow_loader_names=organization.allow_loader_names)
        with watching(organization if command else None, command or ""):
            definitions.write(plan)
        outcomes = {
            services.CREATED: sorted(d.name for d in plan.created),
            services.UPDATED: sorted(d.name for d in plan.updated),
            services.UNCHANGED: sorted(plan.unchanged),
        }
        if outcomes[services.CREATED] or outcomes[services.UPDATED]:
            audit.record(
                AuditEvent.Kind.VARIABLES_IMPORTED,
                group=group,
                detail={"file": source, **outcomes},
            )
    return outcomes
