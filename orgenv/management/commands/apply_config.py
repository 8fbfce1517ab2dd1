"""python manage.py apply_config FILE.yaml [--prune] [--dry-run]"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import IntegrityError

from ... import configuration
from ...crypto import DecryptionError
from ..base import OrgenvCommand, check_actor_administers


class Command(OrgenvCommand):
    pauses_collector = True
    help = (
        "Make the database match a YAML file of organizations, teams, projects, groups, grants "
        "and variables (the format is in docs/commands.md). The whole file is validated before "
        "anything is written; any error rejects it whole, naming the line. Absent keys and "
        "lists are left as they are. --prune also deletes, inside the groups and projects the "
        "file lists, the variables, project variables and group grants (projects, teams) that "
        "it no longer lists; it never deletes organizations, projects, teams, groups or "
        "memberships."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("file", metavar="FILE.yaml")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="delete variables and grants of listed groups (and project variables of "
            "listed projects) that the file no longer lists",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="validate and print what would change, then write nothing",
        )

    def handle(
        self, *args: object, file: str, prune: bool, dry_run: bool, **options: object
    ) -> None:
        try:
            config = configuration.read(file, prune=prune)
        except configuration.ConfigInvalid as exc:
            count = len(exc.errors) + exc.more
            raise CommandError(
                f"{file} was not applied ({count} error{'s' if count != 1 else ''}; "
                f"nothing was changed):\n{exc}"
            ) from None
        check_actor_administers([o.slug for o in config.organizations])
        try:
            summary = configuration.apply(config, prune=prune, dry_run=dry_run)
        except (ValidationError, IntegrityError, DecryptionError) as exc:
            # Validation read the database before writing; a model guard or constraint can
            # still refuse (a concurrent change, a value no key decrypts): all is rolled back.
            raise CommandError(
                f"{file} was not applied (nothing was changed): {_reason(exc)}"
            ) from None
        dry = dry_run
        if dry:
            self.stdout.write(f"Dry run of {file}: nothing was written. It would change:")
        else:
            self.stdout.write(f"Applied {file}{' with --prune' if prune else ''}.")
        for line in summary.lines():
            self.stdout.write(f"  {line}")
        protected = summary.protected_lines()
        if protected:
            self.stdout.write(
                "Protected groups (applied directly, without a change request; every org admin "
                + ("would be notified):" if dry else "is notified):")
            )
            for line in protected:
                self.stdout.write(f"  {line}")
        self.stdout.write("Plan (effective environments):" if dry else "Effect on environments:")
        for line in summary.plan_lines():
            self.stdout.write(f"  {line}")
        if summary.secrets and not dry:
            self.stdout.write(
                "Signing secrets of the new webhooks (shown this once: put each in its "
                "receiver now, or give the next apply a secret_from_env):"
            )
            for line in summary.secrets:
                self.stdout.write(f"  {line}")
        for warning in summary.warnings:
            self.stderr.write(f"warning: {warning}")


def _reason(exc: Exception) -> str:
    messages = getattr(exc, "messages", None)
    return " ".join(messages) if messages else str(exc)
