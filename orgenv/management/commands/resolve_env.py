"""resolve_env ORG/PROJECT [--format json|dotenv|shell] [--explain] [--show-secrets]
                        [--as-of ISO8601] [--why NAME]
resolve_env --resolution ID [--format json|dotenv|shell]

Prints a project's effective environment. json, dotenv and shell print every value, secrets
included: they are what an execution would receive, for an operator who already holds the
database and the keys. --explain is for reading on a screen and in tickets, so it masks
secret values unless --show-secrets is given. --resolution replays one past resolution
(an `ORGENV_RESOLUTION_ID`): the very bytes its runner received, in the format asked for.
"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from orgenv.audit import events
from orgenv.audit.censor import MASK
from orgenv.audit.resolutions import resolution_deliver, resolution_record
from orgenv.forensics.replay import ReplayError, render_replay, replay_payload
from orgenv.formats import FORMATS, render
from orgenv.management.base import OrgenvCommand, parse_label, project_from_label
from orgenv.models import AuditEvent, Project
from orgenv.resolution import Definition, Resolved
from orgenv.selectors.as_of import AsOfError, find_project, layers_as_of, parse_when
from orgenv.selectors.layers import ProjectLayers, load_layers, reveal
from orgenv.selectors.reach import why_name


class Command(OrgenvCommand):
    help = "Print the effective environment of a project, with --explain for sources."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("project", metavar="ORG/PROJECT", nargs="?")
        parser.add_argument(
            "--resolution",
            metavar="ID",
            type=int,
            help="print exactly what this past resolution delivered (its ORGENV_RESOLUTION_ID "
            "or X-Orgenv-Resolution), as the runner received it",
        )
        parser.add_argument("--format", choices=FORMATS, default="json")
        parser.add_argument(
            "--explain",
            action="store_true",
            help="print each variable's source, what it shadowed, the groups and conflicts",
        )
        parser.add_argument(
            "--show-secrets",
            action="store_true",
            help="with --explain, print secret values instead of masking them",
        )
        parser.add_argument(
            "--why",
            metavar="NAME",
            help="explain whether NAME reaches the project and why (or why not), and what an "
            "admin would do; exit status 0 when it reaches, 1 when it does not",
        )
        parser.add_argument(
            "--as-of",
            metavar="ISO8601",
            help="resolve the environment as it was at this time (UTC unless an offset is "
            "given), from history",
        )

    def load_layers(self, label: str, as_of: str | None) -> ProjectLayers:
        """The one place the layers come from: now, or from history with --as-of, where
        ORG/PROJECT is the project of that name at that time, even one deleted since."""
        if not as_of:
            return load_layers(project_from_label(label))
        org, slug = parse_label(label)
        try:
            when = parse_when(as_of)
            live = Project.objects.filter(organization__slug=org, slug=slug).first()
            return layers_as_of(live or find_project(org, slug, when), when)
        except AsOfError as error:
            raise CommandError(str(error)) from None

    def handle(self, *args: object, **options: object) -> None:
        if options["resolution"] is not None:
            if options["project"] or options["explain"] or options["as_of"] or options["why"]:
                raise CommandError(
                    "--resolution replays one resolution: give it without ORG/PROJECT, "
                    "--explain, --as-of or --why."
                )
            self.replay(options["resolution"], options["format"])
            return
        if not options["project"]:
            raise CommandError(
                "Give ORG/PROJECT (for example acme/production_db), or --resolution ID."
            )
        if options.get("why"):
            if options.get("as_of"):
                raise CommandError("--why explains the environment as it is now: drop --as-of.")
            why = why_name(project_from_label(options["project"]), options["why"])
            self.stdout.write("\n".join(why.lines(admin=True)))
            if not why.reaches:
                raise SystemExit(1)
            return
        layers = self.load_layers(options["project"], options.get("as_of"))
        detail = {
            "format": "explain" if options["explain"] else options["format"],
            **({"as_of": options["as_of"]} if options.get("as_of") else {}),
        }
        if options["explain"]:
            if not options["show_secrets"]:
                detail["secrets_withheld"] = True  # masked: no secret value was delivered
            resolution_record(layers=layers, detail=detail)
            self.stdout.write(explain(layers, show_secrets=options["show_secrets"]), ending="")
            return
        delivery = resolution_deliver(layers=layers, secrets=True, detail=detail)
        self.stdout.write(render(options["format"], delivery.payload), ending="")

    def replay(self, resolution: int, fmt: str) -> None:
        event = (
            AuditEvent.objects.select_related("manifest", "project__organization", "organization")
            .filter(pk=resolution)
            .first()
        )
        if event is None:
            raise CommandError(f"There is no audit event {resolution}.")
        try:
            body = render_replay(replay_payload(event), fmt)
        except ReplayError as error:
            raise CommandError(str(error)) from None
        # Reading it again is a read like any other: audited, with what it delivered.
        events.record(
            AuditEvent.Kind.RESOLUTION,
            project=event.project,
            organization=event.organization,
            manifest_id=event.manifest_id,
            detail={"format": fmt, "replay_of": event.pk},
        )
        self.stdout.write(body.decode("utf-8"), ending="")


def _shown(item: Resolved | Definition, show_secrets: bool, *, past: bool) -> str:
    """A value as --explain prints it; a masked secret is never decrypted, a past one never
    cached."""
    if item.is_secret and not show_secrets:
        return MASK
    return repr(reveal(item, cache=not past))


def explain(layers: ProjectLayers, *, show_secrets: bool = False) -> str:
    """A readable account of a resolution: variables, groups, conflicts."""
    project = layers.project
    label = project.environment or "no environment label"
    lines = [f"{project.organization.slug}/{project.slug} ({label})", "", "Variables:"]
    resolution = layers.resolution
    past = layers.as_of is not None
    if not resolution.variables:
        lines.append("  (none)")
    for name, resolved in resolution.variables.items():
        secret = " [secret]" if resolved.is_secret else ""
        shown = _shown(resolved, show_secrets, past=past)
        lines.append(f"  {name} = {shown}  from {resolved.source}{secret}")
        for definition in resolved.shadowed:
            shown = _shown(definition, show_secrets, past=past)
            lines.append(f"      shadows {definition.source}: {shown}")
    lines += ["", "Groups:"]
    if not layers.groups:
        lines.append("  (the organization has no groups)")
    for group in layers.groups:
        how = (
            f"reaches it ({group.reach.how})"
            if group.reach.reaches
            else f"does not reach it: {group.reach.skipped_because}"
        )
        lines.append(f"  {group.name} (priority {group.priority}) {how}")
    lines += ["", "Conflicts:"]
    if not resolution.conflicts:
        lines.append("  (none)")
    for conflict in resolution.conflicts:
        lines.append(
            f"  {conflict.name}: {conflict.winner} wins over {', '.join(conflict.shadowed)} "
            "(same priority; the group name that sorts first wins)"
        )
    return "\n".join(lines) + "\n"
