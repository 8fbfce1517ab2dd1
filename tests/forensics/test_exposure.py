"""exposure: every resolution that delivered a name, with tokens, addresses and versions,
on a generated history."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from orgenv import services
from orgenv.models import AuditEvent, Project, Variable, VariableGroup
from orgenv.tokens import token_issue
from tests.conftest import make_group

URL = "/api/v1/environment"


def exposure(*args: str) -> str:
    out = io.StringIO()
    call_command("exposure", *args, stdout=out)
    return out.getvalue()


def fetch(client, raw: str, address: str, agent: str = "orgenv-cli/0.1.0") -> int:
    response = client.get(
        URL, HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR=address, HTTP_USER_AGENT=agent
    )
    assert response.status_code == 200
    return int(response["X-Orgenv-Resolution"])


@pytest.fixture
def history(world, client):
    """Two projects share the group `db`; `api` overrides PASSWORD with its own. Three
    tokens, three addresses, two versions of the group's PASSWORD."""
    api = Project.objects.create(organization=world.acme, slug="api", name="API")
    group = make_group(world.acme, "db", projects=[world.web, api], secrets={"PASSWORD": "v1"})
    services.project_variable_set(project=api, name="PASSWORD", value="api-own", is_secret=True)
    _, web_ci = token_issue(project=world.web, name="ci")
    _, web_deploy = token_issue(project=world.web, name="deploy")
    _, api_ci = token_issue(project=api, name="ci")
    first_version = Variable.history.latest("history_id").history_id
    events = [
        fetch(client, web_ci, "10.0.0.1"),
        fetch(client, web_deploy, "10.0.0.2"),
        fetch(client, api_ci, "10.0.0.9"),  # gets api's own PASSWORD, not the group's
    ]
    services.variable_set(group=group, name="PASSWORD", value="v2", is_secret=True)
    second_version = Variable.history.latest("history_id").history_id
    events += [fetch(client, web_ci, "10.0.0.3"), fetch(client, web_ci, "10.0.0.1")]
    return group, api, events, first_version, second_version


def test_the_group_view_counts_every_delivery_by_token_address_and_version(history):
    group, api, events, v1, v2 = history
    payload = json.loads(exposure("acme/db", "PASSWORD", "--format", "json"))
    assert payload["target"] == "acme/group:db"
    summary = payload["summary"]
    assert (summary["resolutions"], summary["tokens"], summary["projects"]) == (4, 2, 1)
    assert summary["addresses"] == 3
    assert [(v["version"], v["resolutions"]) for v in summary["versions"]] == [(v1, 2), (v2, 2)]
    rows = payload["resolutions"]
    assert [r["address"] for r in rows] == ["10.0.0.1", "10.0.0.3", "10.0.0.2", "10.0.0.1"]
    assert {r["token"] for r in rows} == {"ci", "deploy"}
    assert all(r["project"] == "web" for r in rows)
    assert "v1" not in json.dumps(payload) and "v2" not in json.dumps(payload)


def test_the_project_view_includes_the_projects_own_definition(history):
    group, api, events, v1, v2 = history
    out = exposure("acme/api", "PASSWORD", "--format", "json")
    payload = json.loads(out)
    assert payload["target"] == "acme/project:api" and payload["summary"]["resolutions"] == 1
    (row,) = payload["resolutions"]
    assert (row["token"], row["address"]) == ("ci", "10.0.0.9")
    assert row["source"] == "project" and "api-own" not in out


def test_since_and_version_narrow_it(history):
    group, api, events, v1, v2 = history
    later = AuditEvent.objects.get(pk=events[3]).at.isoformat()
    since = json.loads(exposure("acme/db", "PASSWORD", "--since", later, "--format", "json"))
    assert since["summary"]["resolutions"] == 2
    only_v1 = json.loads(exposure("acme/db", "PASSWORD", "--version", str(v1), "--format", "json"))
    assert {r["version"] for r in only_v1["resolutions"]} == {str(v1)}
    assert only_v1["summary"]["resolutions"] == 2


def test_table_and_csv(history):
    group, api, events, v1, v2 = history
    table = exposure("acme/db", "PASSWORD")
    assert table.splitlines()[0] == (
        "PASSWORD in acme/group:db: 4 resolution(s), 2 token(s), 1 project(s), 3 address(es)"
    )
    assert f"  version {v1} (group:db): 2 resolution(s), first " in table
    assert "token deploy (oev_" in table and "10.0.0.2" in table
    rows = list(csv.reader(io.StringIO(exposure("acme/db", "PASSWORD", "--format", "csv"))))
    assert rows[0] == [
        "time",
        "project",
        "token",
        "prefix",
        "actor",
        "address",
        "user_agent",
        "source",
        "version",
    ]
    assert len(rows) == 5


def test_a_members_read_without_secrets_is_not_a_delivery_of_a_secret(world, client):
    make_group(world.acme, "db", projects=[world.web], secrets={"PASSWORD": "x"})
    client.force_login(world.bob)
    assert client.get("/api/v1/projects/acme/web/environment").status_code == 200
    assert "0 resolution(s)" in exposure("acme/db", "PASSWORD")


def test_unclear_targets_are_refused_with_the_way_out(world):
    make_group(world.acme, "web")
    with pytest.raises(CommandError, match="acme/web is both a project and a group: write"):
        exposure("acme/web", "X")
    assert "in acme/group:web" in exposure("acme/group:web", "X")
    with pytest.raises(CommandError, match="There is no project or group 'nope'"):
        exposure("acme/nope", "X")
    with pytest.raises(CommandError, match="since"):
        exposure("acme/group:web", "X", "--since", "yesterday")


@pytest.mark.django_db
def test_must_show_exposure_of_a_demo_fetch_lists_its_token_and_address(client):
    call_command("demo", stdout=io.StringIO())
    project = Project.objects.get(slug="production_db")
    _, raw = token_issue(project=project, name="nightly-backup")
    fetch(client, raw, "192.0.2.44")
    out = exposure("acme/production_db", "DATABASE_PASSWORD")
    assert out.startswith("DATABASE_PASSWORD in acme/project:production_db: 1 resolution(s)")
    (line,) = [line for line in out.splitlines() if "nightly-backup" in line]
    assert "token nightly-backup (oev_" in line and "192.0.2.44" in line
    assert VariableGroup.objects.filter(name="production-db").exists()


def test_the_audit_page_answers_who_received_this_for_admins_only(client, world, history):
    group, api, events, v1, v2 = history
    client.force_login(world.alice)
    page = client.get("/orgs/acme/audit/exposure/", {"target": "group:db", "name": "PASSWORD"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "4 resolutions, 2 tokens, 1 project, 3 addresses" in html
    assert "token deploy (oev_" in html and "10.0.0.2" in html
    assert f'version {v1} <span class="muted">(group:db)</span>: 2 resolutions' in html
    assert ">v1<" not in html and ">v2<" not in html
    bad = client.get(
        "/orgs/acme/audit/exposure/", {"target": "group:db", "name": "PASSWORD", "since": "x"}
    )
    assert bad.status_code == 400 and "is not an ISO 8601 date" in bad.content.decode()
    for outsider in (world.bob, world.charlie):
        client.force_login(outsider)
        assert client.get("/orgs/acme/audit/exposure/").status_code == 404
