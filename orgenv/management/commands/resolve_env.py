"""resolve_env ORG/PROJECT [--format json|dotenv|shell] [--explain] [--show-secrets]
                        [--as-of ISO8601]
resolve_env --resolution ID [--format json|dotenv|shell]

Prints a project's effective environment. json, dotenv and shell print every value, secrets
included: they are what an execution would receive, for an operator who already holds the
database and the keys. --explain is for reading on a screen and in tickets, so it masks
secret values unless --show-secrets is given. --resolution replays one past resolution
(an `ORGENV_RESOLUTION_ID`): the very bytes its runner received, in the format asked for.
"""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from orgenv.audit import events as audit
from orgenv.audit.censor import MASK
from orgenv.forensics.manifests import manifest_id
from orgenv.forensics.replay import ReplayError, render_replay, replay_payload
from orgenv.selectors.as_of import AsOfError, parse_when, resolve_as_of
from orgenv.selectors.layers import ProjectLayers, resolve_project, reveal

from ...formats import FORMATS, environment_payload, render
from ...management.base import OrgenvCommand, project_from_label
from ...models import AuditEvent, Project


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
            "--as-of",
            metavar="ISO8601",
            help="resolve the environment as it was at this time (UTC unless an offset is "
            "given), from history",
        )

    def load_layers(self, project: Project, options: dict) -> ProjectLayers:
        """The one place the layers come from: now, or from history with --as-of."""
        if options.get("as_of"):
            try:
                return resolve_as_of(project, parse_when(options["as_of"]))
            except AsOfError as error:
                raise CommandError(str(error)) from None
        return resolve_project(project)

    def handle(self, *args: object, **options: object) -> None:
        if options["resolution"] is not None:
            if options["project"] or options["explain"] or options["as_of"]:
                raise CommandError(
                    "--resolution replays one resolution: give it without ORG/PROJECT, "
                    "--explain or --as-of."
                )
            self.replay(options["resolution"], options["format"])
            return
        if not options["project"]:
            raise CommandError(
                "Give ORG/PROJECT (for example acme/production_db), or --resolution ID."
            )
        project = project_from_label(options["project"])
        layers = self.load_layers(project, options)
        as_of = parse_when(options["as_of"]) if options.get("as_of") else None
        audit.record(
            AuditEvent.Kind.RESOLUTION,
            project=project,
            organization=project.organization,
            manifest_id=manifest_id(layers, as_of=as_of),
            detail={
                "format": "explain" if options["explain"] else options["format"],
                **({"as_of": options["as_of"]} if options.get("as_of") else {}),
            },
        )
        if options["explain"]:
            self.stdout.write(explain(layers, show_secrets=options["show_secrets"]), ending="")
            return
        values = {name: r.value for name, r in layers.resolution.variables.items()}
        payload = environment_payload(
            organization=project.organization.slug,
            project=project.slug,
            resolution=layers.resolution,
            values=values,
        )
        self.stdout.write(render(options["format"], payload), ending="")

    def replay(self, resolution: int, fmt: str) -> None:
        event = (
            AuditEvent.objects.select_related("manifest", "project__organization")
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
        audit.record(
            AuditEvent.Kind.RESOLUTION,
            project=event.project,
            project_slug=event.project_slug,
            organization_id=event.organization_id,
            organization_slug=event.organization_slug,
            manifest_id=event.manifest_id,
            detail={"format": fmt, "replay_of": event.pk},
        )
        self.stdout.write(body.decode("utf-8"), ending="")
        self.stdout.flush()


def _shown(value: str, is_secret: bool, show_secrets: bool) -> str:
    if is_secret and not show_secrets:
        return MASK
    return repr(value)


def explain(layers: ProjectLayers, *, show_secrets: bool = False) -> str:
    """A readable account of a resolution: variables, groups, conflicts."""
    project = layers.project
    label = project.environment or "no environment label"
    lines = [f"{project.organization.slug}/{project.slug} ({label})", "", "Variables:"]
    resolution = layers.resolution
    if not resolution.variables:
        lines.append("  (none)")
    for name, resolved in resolution.variables.items():
        secret = " [secret]" if resolved.is_secret else ""
        value = _shown(resolved.value, resolved.is_secret, show_secrets)
        lines.append(f"  {name} = {value}  from {resolved.source}{secret}")
        for definition in resolved.shadowed:
            shadowed = _shown(
                reveal(definition) if show_secrets or not definition.is_secret else "",
                definition.is_secret,
                show_secrets,
            )
            lines.append(f"      shadows {definition.source}: {shadowed}")
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
