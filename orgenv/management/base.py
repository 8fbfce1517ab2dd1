"""The base of orgenv's commands: every change a command makes is attributed to an actor,
`--actor USERNAME` or else `system:<command>` (history rows and audit events alike)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..actors import acting_as


class OrgenvCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: object) -> CommandParser:
        self._command_name = subcommand
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            help="the user this change is attributed to in history and audit (default: "
            "system:<command>)",
        )

    def execute(self, *args: object, **options: object) -> str | None:
        name = getattr(self, "_command_name", None) or self.__module__.rsplit(".", 1)[-1]
        username = options.get("actor")
        if username:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"--actor: there is no user named {username!r}.")
            with acting_as(user.get_username(), user):
                return super().execute(*args, **options)
        with acting_as(f"system:{name}"):
            return super().execute(*args, **options)
