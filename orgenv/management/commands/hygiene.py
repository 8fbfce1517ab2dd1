"""python manage.py hygiene ORG: what the hygiene page shows, as text; exit 1 when a secret
is past its group's max_age_days (so a cron can alert)."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from orgenv.hygiene.public_values import organization_findings
from orgenv.hygiene.report import EXPIRING_DAYS, UNUSED_DAYS, report
from orgenv.models import Organization
from orgenv.selectors.as_of import AsOfError, parse_when

from ..base import OrgenvCommand


class Command(OrgenvCommand):
    pauses_collector = True
    help = (
        "Print an organization's hygiene: secrets by age and last delivery, groups that "
        "reach no project, definitions shadowed everywhere, tokens unused or expiring, "
        "public values that look like credentials. Exit status 1 when a secret is overdue "
        "(older than its group's max_age_days)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("organization", metavar="ORG")
        parser.add_argument(
            "--now",
            metavar="ISO8601",
            help="judge ages and expiries as of this time instead of the clock's (UTC unless "
            "an offset is given), to check a threshold ahead of time",
        )

    def handle(self, *args: object, organization: str, **options: object) -> None:
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"There is no organization {organization!r}.")
        now = timezone.now()
        if options["now"]:
            try:
                now = parse_when(options["now"])
            except AsOfError:
                raise CommandError(
                    f"--now: {options['now']!r} is not an ISO 8601 date or time "
                    "(for example 2026-01-31 or 2026-01-31T14:05Z)."
                ) from None
        result = report(org, now=now)
        write = self.stdout.write
        write(f"Hygiene of {org.slug} at {result.now:%Y-%m-%d %H:%M} UTC")
        write("")
        write("Secrets by age (oldest change first):")
        for s in result.secrets:
            delivered = f"{s.last_delivered:%Y-%m-%d %H:%M}" if s.last_delivered else "never"
            limit = f", max {s.max_age_days}" if s.max_age_days is not None else ""
            flag = "  OVERDUE" if s.overdue else ""
            write(
                f"  {s.owner} {s.name}: changed {s.changed_at:%Y-%m-%d} ({s.age_days} days"
                f"{limit}), last delivered {delivered}{flag}"
            )
        if not result.secrets:
            write("  (none)")
        write("Groups that reach no project:")
        write("".join(f"  {g.name}\n" for g in result.unreaching_groups).rstrip("\n") or "  (none)")
        write("Dead definitions (shadowed in every project they reach):")
        for d in result.dead:
            write(f"  group:{d.group} {d.name}: something else wins in {', '.join(d.projects)}")
        if not result.dead:
            write("  (none)")
        write(f"Tokens unused for {UNUSED_DAYS} days or expiring within {EXPIRING_DAYS}:")
        for t in result.tokens:
            write(f"  {t.token.project.slug} {t.token.name} ({t.token.prefix}…): {t.problem}")
        if not result.tokens:
            write("  (none)")
        write("Public values that look like credentials:")
        findings = organization_findings([org])
        for f in findings:
            write(f"  {f.owner} {f.name}: {f.rules}")
        if not findings:
            write("  (none)")
        overdue = result.overdue
        if overdue:
            write("")
            write(
                f"{len(overdue)} secret{'s are' if len(overdue) != 1 else ' is'} overdue: "
                + ", ".join(f"{s.owner} {s.name}" for s in overdue)
            )
            sys.exit(1)
