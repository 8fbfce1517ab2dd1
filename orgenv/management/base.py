"""The base of orgenv's commands: every change a command makes is attributed to an actor,
`--actor USERNAME` or else `system:<command>` (history rows and audit events alike)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from .. import access
from ..actors import acting_as, current_actor
from ..crypto import DecryptionError
from ..models import Project


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a command holds a whole organization in
    memory (a parsed file, its rows, its resolutions: millions of objects, nearly none of
    them garbage): each automatic collection walks them all again, and at 3,000 projects
    that was half of an apply_config's time. Collections resume when the command ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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

    # Commands that read a whole organization at once set it (see collector_paused).
    pauses_collector = False

    def execute(self, *args: object, **options: object) -> str | None:
        try:
            if self.pauses_collector:
                with collector_paused():
                    return self._execute_as_actor(*args, **options)
            return self._execute_as_actor(*args, **options)
        except DecryptionError as error:
            # A missing key is an operator's problem with a one-line fix, not a crash.
            raise CommandError(str(error)) from None

    def _execute_as_actor(self, *args: object, **options: object) -> str | None:
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


LABEL_EXAMPLES = {
    "PROJECT": "acme/production_db",
    "GROUP": "acme/production",
    "GROUP or ORG/PROJECT": "acme/production",
}


def parse_label(label: str, what: str = "PROJECT") -> tuple[str, str]:
    """ORG/NAME split in two (`what`: a key of LABEL_EXAMPLES), or a CommandError showing the
    expected shape. The one label parser of every command."""
    org, slash, name = label.partition("/")
    if not slash or not org or not name or "/" in name:
        raise CommandError(f"{label!r} is not ORG/{what} (for example {LABEL_EXAMPLES[what]}).")
    return org, name


def project_from_label(label: str) -> Project:
    """The project named ORG/PROJECT, or a CommandError that names it."""
    org, slug = parse_label(label)
    project = (
        Project.objects.select_related("organization")
        .filter(organization__slug=org, slug=slug)
        .first()
    )
    if project is None:
        raise CommandError(f"There is no project {slug!r} in organization {org!r}.")
    return project


def validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return " ".join(f"{field}: {' '.join(m)}" for field, m in error.message_dict.items())
    return " ".join(error.messages)


def check_actor_administers(slugs: list[str]) -> None:
    """With --actor, that user must administer every organization the change touches (a new
    organization needs a superuser). Without it the operator at the shell is trusted."""
    actor = current_actor()
    if actor is None or actor.user is None:
        return
    for slug in slugs:
        if not access.may_administer(actor.user, [slug]):
            raise CommandError(
                f"--actor: {actor.label} does not administer organization {slug!r}; "
                "pick an admin of it (or a superuser)."
            )
