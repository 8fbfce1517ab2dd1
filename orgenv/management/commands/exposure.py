"""python manage.py exposure ORG/PROJECT NAME | ORG/GROUP NAME [--since T] [--version V]
[--format table|json|csv]"""

from __future__ import annotations

import csv
import json

from django.core.management.base import CommandError, CommandParser

from orgenv.forensics.exposure import Exposure, NoSuchTarget, exposure, find_target
from orgenv.formats import spreadsheet_safe
from orgenv.models import Organization
from orgenv.selectors.as_of import AsOfError, parse_when

from ..base import OrgenvCommand

COLUMNS = (
    "time",
    "project",
    "token",
    "prefix",
    "actor",
    "address",
    "user_agent",
    "source",
    "version",
)


class Command(OrgenvCommand):
    pauses_collector = True
    help = (
        "Every resolution that delivered NAME — time, project, token, address, user agent, "
        "version — and a summary: the blast radius of a leaked credential. ORG/PROJECT: the "
        "project's resolutions, whatever NAME's source; ORG/GROUP: any project's resolutions "
        "that got NAME from that group (write ORG/project:X or ORG/group:X when both exist)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("target", metavar="ORG/PROJECT|ORG/GROUP")
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--since", metavar="ISO8601", help="only resolutions from then on")
        # --version is a variable's version here, not Django's own version flag, which
        # argparse would otherwise refuse as a duplicate.
        for container in (parser, parser._optionals):
            container.conflict_handler = "resolve"
        parser.add_argument(
            "--version", type=int, metavar="V", help="only deliveries of this version"
        )
        parser.add_argument("--format", choices=("table", "json", "csv"), default="table")

    def handle(self, *args: object, **options: object) -> None:
        label = options["target"]
        org_slug, slash, rest = label.partition("/")
        if not slash or not org_slug or not rest:
            raise CommandError(
                f"{label!r} is not ORG/PROJECT or ORG/GROUP (for example acme/production_db)."
            )
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"There is no organization {org_slug!r}.")
        try:
            project, group = find_target(org, rest)
        except NoSuchTarget as error:
            raise CommandError(str(error)) from None
        since = None
        if options["since"]:
            try:
                since = parse_when(options["since"])
            except AsOfError:
                raise CommandError(
                    f"--since: {options['since']!r} is not an ISO 8601 date or time "
                    "(for example 2026-01-31 or 2026-01-31T14:05Z)."
                ) from None
        result = exposure(
            org,
            options["name"],
            project=project,
            group=group,
            since=since,
            version=options["version"],
        )
        write = {"table": _table, "json": _json, "csv": _csv}[options["format"]]
        self.stdout.write(write(result), ending="")


def _rows(result: Exposure) -> list[list[str]]:
    return [
        [
            d.at.isoformat(),
            d.project,
            d.token_name,
            d.token_prefix,
            d.actor,
            d.address,
            d.user_agent,
            d.source,
            "" if d.version is None else str(d.version),
        ]
        for d in result.deliveries
    ]


def _json(result: Exposure) -> str:
    payload = {
        "target": result.target,
        "name": result.name,
        "summary": result.summary(),
        "resolutions": [dict(zip(COLUMNS, row, strict=True)) for row in _rows(result)],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


class _Lines(list):
    def write(self, line: str) -> None:
        self.append(line)


def _csv(result: Exposure) -> str:
    lines = _Lines()
    writer = csv.writer(lines)
    writer.writerow(COLUMNS)
    for row in _rows(result):
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return "".join(lines)


def _table(result: Exposure) -> str:
    s = result.summary()
    lines = [
        f"{result.name} in {result.target}: {s['resolutions']} resolution(s), "
        f"{s['tokens']} token(s), {s['projects']} project(s), {s['addresses']} address(es)"
    ]
    for v in result.versions:
        version = v.version if v.version is not None else "?"
        lines.append(
            f"  version {version} ({v.source}): {v.resolutions} resolution(s), "
            f"first {v.first:%Y-%m-%d %H:%M:%S}, last {v.last:%Y-%m-%d %H:%M:%S}"
        )
    if result.deliveries:
        header = ["time (UTC)", "project", "who", "address", "user agent", "source", "version"]
        body = [
            [
                f"{d.at:%Y-%m-%d %H:%M:%S}",
                d.project,
                d.who,
                d.address or "-",
                d.user_agent or "-",
                d.source,
                "?" if d.version is None else str(d.version),
            ]
            for d in result.deliveries
        ]
        widths = [max(map(len, column)) for column in zip(header, *body, strict=True)]
        lines.append("")
        template = "  ".join(f"{{:<{w}}}" for w in widths)
        lines += [template.format(*row).rstrip() for row in [header, *body]]
    return "\n".join(lines) + "\n"
