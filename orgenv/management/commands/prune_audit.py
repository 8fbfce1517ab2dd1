"""prune_audit [--days N] [--dry-run]: delete audit events older than the retention, then
the manifests (what resolutions delivered: names, sources, versions) no event references any
more.

Decided: audit events (and manifests) only. Change history is kept, because
`resolve_env --as-of` rebuilds past environments from it; pruning it would silently make old
incidents unanswerable.
Whoever needs to trim history too can run simple-history's own `clean_old_history`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from ...forensics import manifests
from ...management.base import OrgenvCommand
from ...models import AuditEvent


class Command(OrgenvCommand):
    help = "Delete audit events older than AUDIT_RETENTION_DAYS (or --days); history is kept."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"keep this many days (default: AUDIT_RETENTION_DAYS, "
            f"{settings.AUDIT_RETENTION_DAYS})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        days = options["days"] if options["days"] is not None else settings.AUDIT_RETENTION_DAYS
        if days < 1:
            raise CommandError(f"--days must be at least 1 (got {days}).")
        cutoff = timezone.now() - timedelta(days=days)
        when = f"{cutoff:%Y-%m-%d %H:%M} UTC"
        if options["dry_run"]:
            count = AuditEvent.objects.filter(at__lt=cutoff).count()
            unreferenced = manifests.prunable(cutoff).count()
            self.stdout.write(
                f"Would delete {count} audit event(s) older than {when}, and {unreferenced} "
                "manifest(s) of what resolutions delivered that no later event references."
            )
            return
        count = AuditEvent.objects.prune(cutoff)
        unreferenced = manifests.prune(cutoff)
        self.stdout.write(
            f"Deleted {count} audit event(s) older than {when}, and {unreferenced} "
            "manifest(s) of what resolutions delivered that no event references any more."
        )
