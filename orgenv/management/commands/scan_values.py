"""python manage.py scan_values [ORG …]: public values that look like credentials; exit 1
when there is any (so CI or a cron can alert)."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError, CommandParser

from orgenv.hygiene.public_values import organization_findings
from orgenv.models import Organization

from ..base import OrgenvCommand


class Command(OrgenvCommand):
    pauses_collector = True
    help = (
        "List every public value that looks like a credential (detect-secrets rules), by "
        "organization, owner and name, with the rules it matched; never the value. Exit "
        "status 1 when there is any. Values acknowledged as 'not a secret' are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("organizations", metavar="ORG", nargs="*", help="default: all")

    def handle(self, *args: object, organizations: list[str], **options: object) -> None:
        orgs = list(Organization.objects.order_by("slug"))
        if organizations:
            by_slug = {o.slug: o for o in orgs}
            unknown = [slug for slug in organizations if slug not in by_slug]
            if unknown:
                raise CommandError(f"There is no organization {unknown[0]!r}.")
            orgs = [by_slug[slug] for slug in organizations]
        findings = organization_findings(orgs)
        for finding in findings:
            self.stdout.write(str(finding))
        if not findings:
            self.stdout.write("No public value looks like a credential.")
            return
        count = len(findings)
        self.stdout.write(
            f"{count} public value{'s look' if count != 1 else ' looks'} like a credential: "
            "mark it secret, or tick 'not a secret' on its variable in the admin if it is "
            "meant to be public."
        )
        sys.exit(1)
