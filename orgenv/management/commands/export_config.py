"""python manage.py export_config [ORG …]"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from orgenv import access
from orgenv.actors import current_actor
from orgenv.configuration.exporting import export
from orgenv.models import Organization

from ..base import OrgenvCommand


class Command(OrgenvCommand):
    pauses_collector = True
    help = (
        "Print the current state of organizations (all of them by default) as an apply_config "
        "file: stable order, a comment naming each group's environment, secrets without their "
        "values (apply_config keeps the current value of a secret the file leaves out)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("organizations", nargs="*", metavar="ORG")

    def handle(self, *args: object, organizations: list[str], **options: object) -> None:
        found = Organization.objects.all()
        if organizations:
            found = found.filter(slug__in=organizations)
            missing = sorted(set(organizations) - {o.slug for o in found})
            if missing:
                raise CommandError(f"There is no organization {', '.join(map(repr, missing))}.")
        actor = current_actor()
        if actor is not None and actor.user is not None:
            refused = [o.slug for o in found if not access.is_org_admin(actor.user, o)]
            if refused:
                raise CommandError(
                    f"--actor: {actor.label} does not administer {', '.join(refused)}."
                )
        self.stdout.write(export(found), ending="")
