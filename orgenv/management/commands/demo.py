"""python manage.py demo — the demo data of docs/demo.md, through the same code as apply_config.

It loads only into an empty database (no user, no organization): `make run` calls it at every
start, and it must never undo what someone changed since, nor create admin/admin in a
database that has real users."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from ... import configuration
from ...models import Organization
from ..base import OrgenvCommand

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "demo.yaml"

# (username, password, is_staff). admin is staff but not a superuser: it administers acme
# through its Membership, which is exactly what a real organization admin looks like.
DEMO_USERS = [("admin", "admin", True), ("alice", "alice", False)]


class Command(OrgenvCommand):
    help = (
        "Load the demo: organization acme with its projects, team, groups and variables "
        f"({DEMO_FILE.name}), and the users admin/admin (staff, admin of acme) and alice/alice. "
        "It loads only into an empty database: in one that holds any user or organization it "
        "changes nothing and says so."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        users, organizations = User.objects.count(), Organization.objects.count()
        if users or organizations:
            self.stdout.write(
                f"The database already holds data ({users} user(s), {organizations} "
                "organization(s)): the demo was not loaded and nothing was changed. It loads "
                "only into an empty database."
            )
            return
        for username, password, is_staff in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"is_staff": is_staff}
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(f"Created user {username} (password: {password}).")
        try:
            config = configuration.read(str(DEMO_FILE), environ={})
        except configuration.ConfigInvalid as exc:  # only if someone broke the shipped file
            raise CommandError(f"The demo file is invalid:\n{exc}") from None
        summary = configuration.apply(config)
        for line in summary.lines():
            self.stdout.write(line)
        for warning in summary.warnings:  # the demo keeps one on purpose: see it in scan_values
            self.stdout.write(f"warning: {warning}")
        self.stdout.write("Demo ready: sign in as admin/admin or alice/alice.")
