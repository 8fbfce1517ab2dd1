"""python manage.py rotate_keys"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from orgenv import rotation as keys
from orgenv.audit import events as audit

from ... import crypto
from ...models import AuditEvent
from ..base import OrgenvCommand


class Command(OrgenvCommand):
    help = (
        "Re-encrypt every stored value, history tables included, with the first key of "
        "FERNET_KEYS, so that the other keys can be retired. Safe to run again: values already "
        "under the first key are left alone. It checks first that every value decrypts "
        "(changing nothing if one does not), then works in short batches beside live "
        "traffic, never overwriting a value changed while it runs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--batch-size", type=int, default=keys.BATCH_SIZE, help="rows read per query"
        )

    def handle(self, *args: object, batch_size: int, **options: object) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            report = keys.rotate_all(batch_size=batch_size)
        except (keys.RotationError, crypto.DecryptionError) as exc:
            raise CommandError(str(exc)) from None
        with transaction.atomic():
            audit.record(
                AuditEvent.Kind.KEYS_ROTATED,
                detail={
                    "rotated": report.rotated,
                    "already_current": report.current,
                    "changed_while_rotating": report.raced,
                    "left": report.left,
                },
            )
        for table, count in sorted(report.rotated.items()):
            self.stdout.write(f"  {table}: {count} re-encrypted")
        self.stdout.write(
            f"Re-encrypted {report.total_rotated} value(s) with the first key; "
            f"{report.current} already used it."
        )
        if report.raced:
            self.stdout.write(
                f"{report.raced} value(s) were changed by an editor while rotating; their new "
                "version was rotated (nothing was overwritten)."
            )
        if report.left:
            raise CommandError(
                f"{len(report.left)} value(s) kept changing and still use an old key: "
                f"{', '.join(report.left[:10])}. Run rotate_keys again before removing the "
                "old key."
            )
