"""Hygiene on a generated organization with a fixed clock: ages and last deliveries,
overdue secrets, groups reaching nothing, dead definitions, tokens; the command's exit
status; the page's access; max_age_days in apply_config."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orgenv import services
from orgenv.hygiene.report import report
from orgenv.models import Project, ProjectToken, ProjectVariable, Variable, VariableGroup
from orgenv.tokens import token_issue
from tests.conftest import make_group

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def aged(model, days: float, **lookup) -> None:
    model.objects.filter(**lookup).update(updated_at=NOW - timedelta(days=days))


@pytest.fixture
def org(world, client):
    api = Project.objects.create(organization=world.acme, slug="api", name="API")
    db = make_group(
        world.acme,
        "db",
        projects=[world.web, api],
        secrets={"DB_PASSWORD": "p", "OLD_KEY": "k"},
        max_age_days=90,
    )
    make_group(world.acme, "orphan", secrets={"NOBODY": "n"})  # selected, but no projects
    make_group(world.acme, "low", projects=[world.web], variables={"MODE": "low"}, priority=-1)
    make_group(world.acme, "high", projects=[world.web], variables={"MODE": "high"}, priority=5)
    services.project_variable_set(project=api, name="API_TOKEN", value="t", is_secret=True)
    aged(Variable, 10, name="DB_PASSWORD")
    aged(Variable, 91, name="OLD_KEY")  # past db's 90 days
    aged(Variable, 400, name="NOBODY")  # old, but its group sets no maximum
    aged(ProjectVariable, 200, name="API_TOKEN")

    unused, _ = token_issue(project=world.web, name="unused")
    never, _ = token_issue(project=world.web, name="never")
    expiring, _ = token_issue(project=api, name="expiring")
    fresh, raw = token_issue(project=api, name="fresh")
    ProjectToken.objects.filter(pk=unused.pk).update(last_used_at=NOW - timedelta(days=31))
    ProjectToken.objects.filter(pk=never.pk).update(created_at=NOW - timedelta(days=40))
    ProjectToken.objects.filter(pk=expiring.pk).update(
        expires_at=NOW + timedelta(days=5), last_used_at=NOW - timedelta(days=1)
    )
    # A real delivery of api's environment: DB_PASSWORD, OLD_KEY and API_TOKEN.
    assert client.get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    ProjectToken.objects.filter(pk=fresh.pk).update(last_used_at=NOW - timedelta(days=2))
    return db


def test_secrets_by_age_with_last_delivery_and_the_overdue_flag(world, org):
    result = report(world.acme, now=NOW)
    rows = [(s.owner, s.name, s.age_days, s.overdue) for s in result.secrets]
    assert rows == [
        ("group:orphan", "NOBODY", 400, False),
        ("project:api", "API_TOKEN", 200, False),
        ("group:db", "OLD_KEY", 91, True),
        ("group:db", "DB_PASSWORD", 10, False),
    ]
    delivered = {s.name: s.last_delivered for s in result.secrets}
    assert delivered["NOBODY"] is None
    assert delivered["API_TOKEN"] is not None and delivered["OLD_KEY"] is not None
    assert [(s.owner, s.name) for s in result.overdue] == [("group:db", "OLD_KEY")]


def test_groups_reaching_nothing_and_dead_definitions(world, org):
    result = report(world.acme, now=NOW)
    assert [g.name for g in result.unreaching_groups] == ["orphan"]
    assert [(d.group, d.name, d.projects) for d in result.dead] == [("low", "MODE", ("web",))]
    # Overridden by the project too: still dead; winning somewhere: alive.
    services.project_variable_set(project=world.web, name="MODE", value="p", is_secret=False)
    dead = {(d.group, d.name) for d in report(world.acme, now=NOW).dead}
    assert dead == {("low", "MODE"), ("high", "MODE")}


def test_tokens_unused_never_used_or_expiring(world, org):
    flags = [(f.token.name, f.problem) for f in report(world.acme, now=NOW).tokens]
    assert flags == [
        ("expiring", "expires in 5 days"),
        ("never", "never used"),
        ("unused", "unused for 31 days"),
    ]


def test_the_command_exits_1_when_a_secret_is_overdue_and_0_when_rotated(world, org):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("hygiene", "acme", "--now", NOW.isoformat(), stdout=out)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert "group:db OLD_KEY: changed" in text and "OVERDUE" in text
    assert text.rstrip().endswith("1 secret is overdue: group:db OLD_KEY")
    assert "orphan" in text and "unused (oev_" in text

    services.variable_set(group=org, name="OLD_KEY", value="rotated", is_secret=True)
    out = io.StringIO()
    call_command("hygiene", "acme", "--now", NOW.isoformat(), stdout=out)  # exit status 0
    assert "OVERDUE" not in out.getvalue()
    with pytest.raises(CommandError, match="There is no organization 'nope'"):
        call_command("hygiene", "nope")


def test_the_page_is_for_the_organizations_admins_only(client, world, org):
    client.force_login(world.alice)
    response = client.get("/orgs/acme/hygiene/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "OLD_KEY" in html and "overdue" in html and "orphan" in html
    for user in (world.bob, world.charlie):
        client.force_login(user)
        assert client.get("/orgs/acme/hygiene/").status_code == 404


def test_apply_config_sets_and_checks_max_age_days(world, tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(
        "organizations:\n  - slug: acme\n    groups:\n      - {name: keys, max_age_days: 30}\n"
    )
    call_command("apply_config", str(config), stdout=io.StringIO())
    assert VariableGroup.objects.get(name="keys").max_age_days == 30
    config.write_text(
        "organizations:\n  - slug: acme\n    groups:\n      - {name: keys, max_age_days: 0}\n"
    )
    with pytest.raises(
        CommandError, match=r"g.yaml:4: organizations\[0\].groups\[0\].max_age_days"
    ):
        call_command("apply_config", str(config), stdout=io.StringIO())


def test_the_admins_group_list_flags_overdue_secrets(client, world, org):
    # Against the real clock this time: the admin list judges ages as of now.
    Variable.objects.filter(name="DB_PASSWORD").update(updated_at=timezone.now())
    Variable.objects.filter(name="OLD_KEY").update(updated_at=timezone.now() - timedelta(days=91))
    client.force_login(world.alice)
    html = client.get("/admin/orgenv/variablegroup/").content.decode()
    assert "⚠ 1 overdue" in html
    assert html.count("⚠") == 1  # orphan's old secret has no maximum: not flagged
