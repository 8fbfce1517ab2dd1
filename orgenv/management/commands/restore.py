"""python manage.py restore ORG/GROUP|ORG/PROJECT --as-of TIME [--dry-run]"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from orgenv import access
from orgenv.actors import current_actor
from orgenv.changes.operators import watching
from orgenv.models import Organization, Project
from orgenv.selectors.as_of import AsOfError, parse_when
from orgenv.services.restore import (
    NothingThen,
    RestoreError,
    RestorePlan,
    plan_group,
    plan_project,
    restore_apply,
)

from ..base import OrgenvCommand, parse_label, validation_message


class Command(OrgenvCommand):
    help = (
        "Make a group (its variables, secret flags, grants, priority, label and access) or a "
        "project's variables what they were at a past time, as a new recorded change. Values "
        "move as stored, never decrypted. ORG/NAME names a group, or else a project; write "
        "ORG/group:NAME or ORG/project:SLUG when both exist."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("target", metavar="ORG/GROUP|ORG/PROJECT")
        parser.add_argument(
            "--as-of",
            required=True,
            metavar="ISO8601",
            help="the time to go back to (UTC unless an offset is given)",
        )
        parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")

    def handle(
        self, *args: object, target: str, as_of: str, dry_run: bool, **options: object
    ) -> None:
        try:
            plan = self.plan(target, parse_when(as_of))
        except (AsOfError, RestoreError) as error:
            raise CommandError(str(error)) from None
        kind = "group" if plan.project is None else "project variables"
        self.stdout.write(f"Restore {plan.label} ({kind}) to {plan.when.isoformat()}:")
        if not plan.steps:
            self.stdout.write("  nothing to restore: it is already as it was then.")
            return
        for step in plan.steps:
            self.stdout.write(f"  {step}")
        self.stdout.write("Plan (effective environments):")
        if not plan.impact:
            self.stdout.write("  no project's environment changes.")
        else:
            self.stdout.write(f"  {plan.impact.headline()}")
            for project in plan.impact.projects:
                self.stdout.write(f"  {plan.organization.slug}/{project.project}:")
                for line in project.lines():
                    self.stdout.write(f"  {line}")
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
            return
        try:
            with transaction.atomic(), watching(plan.organization, "restore"):
                restore_apply(plan=plan)
        except ValidationError as error:
            raise CommandError(
                f"{plan.label} was not restored (nothing was changed): {validation_message(error)}"
            ) from None
        self.stdout.write(f"Restored {plan.label} to {plan.when.isoformat()} as a new change.")

    def plan(self, target: str, when: datetime) -> RestorePlan:
        org_slug, name = parse_label(target, "GROUP or ORG/PROJECT")
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"There is no organization {org_slug!r}.")
        actor = current_actor()
        if (
            actor is not None
            and actor.user is not None
            and not access.is_org_admin(actor.user, org)
        ):
            raise CommandError(
                f"--actor: {actor.label} does not administer organization {org_slug!r}."
            )
        kind, colon, rest = name.partition(":")
        if colon and kind in ("group", "project"):
            name = rest
        project = (
            Project.objects.filter(organization=org, slug=name)
            .select_related("organization")
            .first()
        )
        if kind == "project" and colon:
            if project is None:
                raise CommandError(f"There is no project {name!r} in organization {org_slug!r}.")
            return plan_project(project, when)
        try:
            group_plan = plan_group(org, name, when)
        except NothingThen:
            if project is None or (colon and kind == "group"):
                raise
            return plan_project(project, when)
        if project is not None and not colon:
            raise CommandError(
                f"{target} names both a group and a project: write {org_slug}/group:{name} "
                f"or {org_slug}/project:{name}."
            )
        return group_plan
