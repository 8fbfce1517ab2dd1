"""python manage.py import_env ORG/GROUP FILE [--secret NAME …] [--all-secret]"""

from __future__ import annotations

from functools import partial

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from orgenv.audit import events as audit
from orgenv.configuration import dotenv
from orgenv.hygiene.public_values import findings_of

from ... import services
from ...models import AuditEvent, VariableGroup
from ...validators import validate_loader_name, validate_variable_name, validate_variable_value
from ..base import OrgenvCommand, check_actor_administers


class Command(OrgenvCommand):
    help = (
        "Set variables of an existing group from a dotenv file, all or nothing: existing "
        "variables are updated, new ones created, none deleted. New variables are public "
        "unless --secret/--all-secret says otherwise; an existing secret stays secret. "
        "Values are taken literally (no $VAR interpolation)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("target", metavar="ORG/GROUP")
        parser.add_argument("file", metavar="FILE")
        parser.add_argument(
            "--secret",
            metavar="NAME",
            action="append",
            default=[],
            help="mark this variable secret (repeat for several)",
        )
        parser.add_argument("--all-secret", action="store_true", help="mark every variable secret")

    def handle(
        self,
        *args: object,
        target: str,
        file: str,
        secret: list[str],
        all_secret: bool,
        **options: object,
    ) -> None:
        group = _group(target)
        check_actor_administers([group.organization.slug])
        entries = _read(file, allow_loader_names=group.organization.allow_loader_names)
        names = {entry.name for entry in entries}
        unknown = [name for name in secret if name not in names]
        if unknown:
            raise CommandError(
                f"--secret {unknown[0]}: {file} does not set {unknown[0]}; nothing was changed."
            )
        wanted_secret = set(secret)
        flags = dict(group.variables.values_list("name", "is_secret"))
        outcomes: dict[str, list[str]] = {}
        warnings = []
        with transaction.atomic():
            for entry in entries:
                is_secret = (
                    all_secret or entry.name in wanted_secret or flags.get(entry.name, False)
                )
                variable, outcome = services.variable_set(
                    group=group, name=entry.name, value=entry.value, is_secret=is_secret
                )
                outcomes.setdefault(outcome, []).append(entry.name)
                warnings += [
                    f"{file}:{entry.line}: {entry.name} is public but looks like a credential "
                    f"({finding.rules}); import it with --secret {entry.name}."
                    for finding in findings_of([variable])
                ]
            changed = sorted(
                outcomes.get(services.CREATED, []) + outcomes.get(services.UPDATED, [])
            )
            if changed:
                audit.record(
                    AuditEvent.Kind.VARIABLES_IMPORTED,
                    group=group,
                    detail={
                        "file": file.rsplit("/", 1)[-1],
                        "created": sorted(outcomes.get(services.CREATED, [])),
                        "updated": sorted(outcomes.get(services.UPDATED, [])),
                        "unchanged": sorted(outcomes.get(services.UNCHANGED, [])),
                    },
                )
        counts = ", ".join(
            f"{len(outcomes.get(o, []))} {o}"
            for o in (services.CREATED, services.UPDATED, services.UNCHANGED)
        )
        self.stdout.write(f"Imported {len(entries)} variable(s) into {target}: {counts}.")
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")


def _group(target: str) -> VariableGroup:
    org_slug, sep, name = target.partition("/")
    if not sep or not org_slug or not name or "/" in name:
        raise CommandError(f"{target!r} is not ORG/GROUP, for example acme/production.")
    group = (
        VariableGroup.objects.select_related("organization")
        .filter(organization__slug=org_slug, name=name)
        .first()
    )
    if group is None:
        raise CommandError(
            f"There is no group {name!r} in organization {org_slug!r}; create it first "
            "(import_env never creates groups)."
        )
    return group


def _read(file: str, *, allow_loader_names: bool) -> list[dotenv.Entry]:
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CommandError(f"Cannot read {file}: {reason}.") from None
    try:
        entries = dotenv.parse(text, file)
    except dotenv.DotenvError as exc:
        problems = list(exc.problems)
    else:
        problems = []
    if not problems:
        # Names and values follow the same rules as every other write path.
        loader_rule = partial(validate_loader_name, allowed=allow_loader_names)
        first_line: dict[str, int] = {}
        for entry in entries:
            checks = (
                (validate_variable_name, entry.name),
                (loader_rule, entry.name),
                (validate_variable_value, entry.value),
            )
            for validate, text in checks:
                try:
                    validate(text)
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
        lines = "\n".join(p.format(file) for p in sorted(problems, key=lambda p: p.line))
        raise CommandError(f"{file} was not imported (nothing was changed):\n{lines}")
    return entries
