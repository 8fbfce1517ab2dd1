"""issue_token ORG/PROJECT --name NAME [--days N | --never-expires]: print a new project
token, once. Without either, it expires after TOKEN_DEFAULT_DAYS (90) days.

Only the token goes to stdout, so `TOKEN=$(python manage.py issue_token acme/web --name ci)`
works; what to do with it goes to stderr.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from ...actors import current_actor
from ...management.base import OrgenvCommand, project_from_label, validation_message
from ...tokens import token_issue


class Command(OrgenvCommand):
    help = "Issue a project token for a runner and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("project", metavar="ORG/PROJECT")
        parser.add_argument("--name", required=True, help="unique within the project, e.g. ci")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument(
            "--days",
            type=int,
            help="the token expires after N days (default: TOKEN_DEFAULT_DAYS, 90)",
        )
        lifetime.add_argument(
            "--never-expires", action="store_true", help="the token does not expire"
        )

    def handle(self, *args: object, **options: object) -> None:
        project = project_from_label(options["project"])
        actor = current_actor()
        try:
            token, raw = token_issue(
                project=project,
                name=options["name"],
                days=options["days"],
                never_expires=options["never_expires"],
                created_by=actor.user if actor else None,
            )
        except ValidationError as error:
            raise CommandError(validation_message(error)) from None
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            if token.expires_at
            else ("does not expire")
        )
        self.stderr.write(
            f"Token {token.name!r} for {project} ({token.prefix}…) {expiry}. It is shown only "
            "now: store it in the runner's secret store as ORGENV_TOKEN."
        )
        self.stdout.write(raw)
