"""apply_config and export_config cost a number of queries that does not grow with the
organization: the same at 5 projects as at 50 (and groups, teams, members and variables
likewise) — creating it, changing it, planning it unchanged, exporting it. Both sizes stay
within one batch of each bulk statement (orgenv.services.definitions.BATCH_SIZE, and on
SQLite Django's 999 parameters per bulk insert), so an equal count means no query per
entry. The timing at 3,000 projects is bench/scale.py's business (docs/scale.md)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgenv import configuration
from orgenv.actors import acting_as
from orgenv.models import Project, Variable, VariableGroup

SMALL = {"projects": 5, "groups": 2, "variables": 3, "users": 2}
LARGE = {"projects": 50, "groups": 20, "variables": 5, "users": 10}


def organization_file(slug: str, projects: int, groups: int, variables: int, users: int, *,
                      value: str = "v") -> str:  # fmt: skip
    lines = ["organizations:", f"  - slug: {slug}", "    members:"]
    lines += [f"      - {{user: u{u}, role: member}}" for u in range(users)]
    lines.append("    projects:")
    for p in range(projects):
        lines += [
            f"      - slug: p{p}",
            f"        environment: {'production' if p % 2 else 'staging'}",
            f"        members: [u{p % users}]",
            "        variables:",
            f"          - {{name: P_ONE, value: {value}-{p}}}",
            f"          - {{name: P_TWO, value: {value}-{p}, secret: true}}",
        ]
    lines.append("    teams:")
    for t in range(max(projects // 10, 1)):
        lines.append(f"      - {{slug: t{t}, projects: [p{t}], members: [u{t % users}]}}")
    lines.append("    groups:")
    for g in range(groups):
        labelled = g % 2 == 1
        # Staging, not production: a production group starts protected, and each protected
        # group changed is notified as a forced change (SPEC "Change requests"), by design
        # one notification per group.
        granted = [p for p in range(g % 5, projects, 5) if not labelled or not p % 2][:3]
        lines += [
            f"      - name: g{g}",
            "        environment: " + ("staging" if labelled else '""'),
            f"        priority: {g % 3}",
            f"        projects: [{', '.join(f'p{p}' for p in granted)}]",
            f"        teams: [{'t0' if not labelled else ''}]",
            "        variables:",
        ]
        lines += [
            f"          - {{name: V{v}, value: {value}-{g}-{v}{', secret: true' if v % 2 else ''}}}"
            for v in range(variables)
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def users(db) -> None:
    get_user_model().objects.bulk_create(
        get_user_model()(username=f"u{u}") for u in range(LARGE["users"])
    )


def queries_of(action) -> int:  # noqa: ANN001
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)


def apply_file(tmp_path, text: str, name: str, **options: bool) -> configuration.Summary:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return configuration.apply(configuration.read(str(path), environ={}), **options)


def export(slug: str) -> str:
    out = io.StringIO()
    call_command("export_config", slug, stdout=out)
    return out.getvalue()


def test_creating_an_organization_costs_the_same_queries_at_5_and_50_projects(users, tmp_path):
    small = queries_of(lambda: apply_file(tmp_path, organization_file("small", **SMALL), "s"))
    large = queries_of(lambda: apply_file(tmp_path, organization_file("large", **LARGE), "l"))
    assert Project.objects.filter(organization__slug="large").count() == 50
    assert Variable.objects.filter(group__organization__slug="large").count() == 100
    assert large == small


def test_changing_every_value_costs_the_same_queries_at_5_and_50_projects(users, tmp_path):
    counts = []
    for slug, size in (("small", SMALL), ("large", LARGE)):
        apply_file(tmp_path, organization_file(slug, **size), slug)
        changed = organization_file(slug, **size, value="w")

        def change(changed=changed, slug=slug, size=size) -> None:
            summary = apply_file(tmp_path, changed, f"{slug}-changed")
            assert summary.as_detail(slug)["variables"]["updated"] == (
                size["groups"] * size["variables"]
            )

        counts.append(queries_of(change))
    assert counts[0] == counts[1]
    assert Variable.objects.get(group__name="g3", name="V2", group__organization__slug="large")


def test_an_unchanged_plan_and_the_export_cost_the_same_queries_at_5_and_50_projects(
    users, tmp_path
):
    plans, exports = [], []
    for slug, size in (("small", SMALL), ("large", LARGE)):
        apply_file(tmp_path, organization_file(slug, **size), slug)
        exports.append(queries_of(lambda slug=slug: export(slug)))
        exported = export(slug)

        def plan(exported=exported, slug=slug) -> None:
            summary = apply_file(tmp_path, exported, f"{slug}-export", dry_run=True)
            # Round trip: what export_config writes, apply_config finds unchanged.
            assert not summary.changed
            assert summary.lines() == [f"{slug}: nothing to change."]
            assert summary.plan_lines() == [f"{slug}: no project's environment changes."]

        plans.append(queries_of(plan))
    assert plans[0] == plans[1]
    assert exports[0] == exports[1]


def test_an_applied_organization_keeps_its_history_and_links(users, tmp_path):
    with acting_as("system:apply_config"):
        apply_file(tmp_path, organization_file("acme", **SMALL), "acme")
    group = VariableGroup.objects.get(organization__slug="acme", name="g0")
    assert sorted(group.projects.values_list("slug", flat=True)) == ["p0"]
    record = group.history.latest("history_id")
    assert record.history_type == "+"
    assert record.history_actor == "system:apply_config"
    assert sorted(record.projects.values_list("project__slug", flat=True)) == ["p0"]
    assert sorted(record.teams.values_list("team__slug", flat=True)) == ["t0"]
    project = Project.objects.get(organization__slug="acme", slug="p0")
    assert [(r.history_type, sorted(m.user.username for m in r.members.all()))
            for r in project.history.all()] == [("+", ["u0"])]  # fmt: skip
    assert sorted(t.team.slug for t in project.history.latest("history_id").teams.all()) == ["t0"]
