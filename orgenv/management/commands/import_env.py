"""python manage.py import_env ORG/GROUP FILE [--secret NAME …] [--all-secret]"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from orgenv.configuration import dotenv, importing
from orgenv.hygiene.public_values import findings_of

from ... import services
from ...models import VariableGroup
from ..base import OrgenvCommand, check_actor_administers, parse_label


class Command(OrgenvCommand):
    help = (
        "Set variables of an existing group from a dotenv file, all or nothing: existing "
        "variables are updated, new ones created, none deleted. New variables are public "
        "unless --secret/--all-secret says otherwise (names that look secret are warned "
        "about); an existing secret stays secret. Values are taken literally (no $VAR "
        "interpolation)."
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
        flags = dict(group.variables.values_list("name", "is_secret"))
        outcomes = importing.variables_import(
            group=group,
            entries=entries,
            secret=secret,
            all_secret=all_secret,
            source=file.rsplit("/", 1)[-1],
            command="import_env",
        )
        counts = ", ".join(
            f"{len(outcomes[o])} {o}"
            for o in (services.CREATED, services.UPDATED, services.UNCHANGED)
        )
        self.stdout.write(f"Imported {len(entries)} variable(s) into {target}: {counts}.")
        # One warning per public value that looks like a credential, at its file:line, with
        # every reason: the rules of detect-secrets that matched the stored value, and the
        # name-based proposal the admin's Paste .env makes (the secret flags of before the
        # import: a variable that was secret stays secret).
        reasons: dict[str, list[str]] = {}
        for finding in findings_of(group.variables.filter(name__in=list(names))):
            reasons.setdefault(finding.name, []).append(finding.rules)
        for entry in entries:
            proposed = importing.proposed_secret(entry.name, entry.value)
            if (
                proposed
                and not all_secret
                and entry.name not in secret
                and not flags.get(entry.name)
            ):
                reasons.setdefault(entry.name, []).append(proposed)
        for entry in entries:
            if entry.name in reasons:
                self.stderr.write(
                    f"warning: {file}:{entry.line}: {entry.name} is public but looks like a "
                    f"credential ({'; '.join(reasons.pop(entry.name))}); import it with "
                    f"--secret {entry.name}."
                )


def _group(target: str) -> VariableGroup:
    org_slug, name = parse_label(target, "GROUP")
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
        return importing.read(text, file, allow_loader_names=allow_loader_names)
    except importing.ImportRefused as refused:
        lines = "\n".join(p.format(file) for p in refused.problems)
        raise CommandError(f"{file} was not imported (nothing was changed):\n{lines}") from None
