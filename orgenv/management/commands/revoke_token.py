"""revoke_token ORG/PROJECT --name NAME: the next request with that token gets 401."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from ...management.base import OrgenvCommand, project_from_label
from ...models import ProjectToken
from ...tokens import token_revoke


class Command(OrgenvCommand):
    help = "Revoke a project token by name."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("project", metavar="ORG/PROJECT")
        parser.add_argument("--name", required=True, help="the token's name")

    def handle(self, *args: object, **options: object) -> None:
        project = project_from_label(options["project"])
        token = ProjectToken.objects.filter(project=project, name=options["name"]).first()
        if token is None:
            names = ", ".join(project.tokens.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"Project {project} has no token named {options['name']!r} (its tokens: {names})."
            )
        already = token.revoked_at is not None
        token_revoke(token=token)
        if already:
            self.stdout.write(
                f"Token {token.name!r} of {project} was already revoked on "
                f"{token.revoked_at:%Y-%m-%d %H:%M} UTC."
            )
        else:
            self.stdout.write(f"Token {token.name!r} of {project} ({token.prefix}…) revoked.")
