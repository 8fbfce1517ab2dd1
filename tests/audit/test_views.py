"""The audit pages: who may see them, what they show, and what they never show."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from orgenv.actors import acting_as
from orgenv.audit import events as audit
from orgenv.audit.censor import CENSORED
from orgenv.models import AuditEvent, ProjectVariable, Team, Variable
from tests.conftest import make_group

SEEDED = ("seeded-secret-one-81f", "seeded-secret-two-c27", "was-public-now-secret-3e9")


@pytest.fixture
def history(world):
    """Changes made by alice (as a request would attribute them) and by a command."""
    with acting_as("alice", world.alice):
        group = make_group(
            world.acme,
            "prod",
            environment="production",
            projects=[world.web],
            secrets={"DB_PASSWORD": SEEDED[0]},
            variables={"POOL": "10"},
        )
    with acting_as("system:import_env"):
        secret = Variable.objects.get(group=group, name="DB_PASSWORD")
        secret.value = SEEDED[1]
        secret.save()
        flipped = ProjectVariable.objects.create(project=world.web, name="K", value=SEEDED[2])
        flipped.is_secret = True
        flipped.save()
    return group


def _csv(client, url):
    response = client.get(url)
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text))), text


def test_only_the_organizations_admins_see_its_audit_pages(client, world):
    for url in ("/orgs/acme/audit/", "/orgs/acme/audit.csv", "/orgs/acme/grants/"):
        assert client.get(url).status_code == 302  # to the sign-in page
        client.force_login(world.bob)
        assert client.get(url).status_code == 404
        client.force_login(world.charlie)
        assert client.get(url).status_code == 404
        client.force_login(world.alice)
        assert client.get(url).status_code == 200
        client.logout()
    client.force_login(world.alice)
    assert client.get("/orgs/nope/audit/").status_code == 404


def test_the_timeline_merges_changes_and_events_and_never_shows_a_value(client, world, history):
    audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor="token:oev_abc")
    client.force_login(world.alice)
    page = client.get("/orgs/acme/audit/").content.decode()
    for value in SEEDED:
        assert value not in page
    assert f"value: {CENSORED}" in page
    assert "is_secret: False → True" in page
    assert "projects added: web" in page
    assert "environment resolved" in page and "token:oev_abc" in page
    assert "system:import_env" in page
    rows, text = _csv(client, "/orgs/acme/audit/?format=csv")
    for value in SEEDED:
        assert value not in text
    assert rows[0] == ["at", "kind", "actor", "what", "changes", "project", "group", "address"]
    assert any(CENSORED in row[4] for row in rows[1:])
    # newest first
    stamps = [row[0] for row in rows[1:]]
    assert stamps == sorted(stamps, reverse=True)


def test_the_filters_narrow_the_timeline_and_the_csv_alike(client, world, history):
    audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor="token:oev_abc")
    other = make_group(world.acme, "other", access="all", variables={"X": "1"})
    client.force_login(world.alice)

    def whats(query):
        rows, _ = _csv(client, f"/orgs/acme/audit.csv?{query}")
        return [(row[2], row[3]) for row in rows[1:]]

    assert {actor for actor, _ in whats("actor=system:import_env")} == {"system:import_env"}
    assert whats("kind=resolution") == [("token:oev_abc", "environment resolved")]
    assert all("environment resolved" != w for _, w in whats("kind=changes"))
    by_group = whats("group=prod")
    assert by_group and all("prod" in w for _, w in by_group)
    assert not any("other" in w for _, w in by_group)
    by_project = whats("project=web")
    assert any(w == "project web" for _, w in by_project)
    assert any(w.startswith("project variable K") for _, w in by_project)
    assert not any(w.startswith("variable") for _, w in by_project)
    future = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert whats(f"since={future}") == []
    assert len(whats(f"until={future}")) == len(whats(""))
    assert other.name == "other"


def test_a_bad_time_filter_is_a_clear_message(client, world):
    client.force_login(world.alice)
    response = client.get("/orgs/acme/audit/?since=yesterday")
    assert response.status_code == 400
    page = response.content.decode()
    assert "From (UTC): &#x27;yesterday&#x27; is not an ISO 8601 date or time" in page
    assert client.get("/orgs/acme/audit.csv?until=soon").status_code == 400


@pytest.mark.parametrize("query", ["since=2026-13-01", "since=0001-01-01T00:00:00%2B14:00"])
def test_a_time_that_cannot_exist_is_a_400_not_a_500(client, world, query):
    client.force_login(world.alice)
    page = client.get(f"/orgs/acme/audit/?{query}")
    assert page.status_code == 400
    assert "is not an ISO 8601 date or time between the years 1 and 9999" in page.content.decode()
    csv_ = client.get(f"/orgs/acme/audit.csv?{query}")
    assert csv_.status_code == 400
    assert csv_["Content-Type"] == "text/plain; charset=utf-8"
    assert csv_.content.decode().startswith("From (UTC): '")


def test_the_last_day_there_is_can_end_a_range(client, world):
    client.force_login(world.alice)
    assert client.get("/orgs/acme/audit/?since=0001-01-01&until=9999-12-31").status_code == 200
    assert client.get("/orgs/acme/audit.csv?until=9999-12-31").status_code == 200


def test_the_timeline_is_paginated_newest_first(client, world):
    for i in range(60):
        audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor=f"token:n{i:02d}")
    client.force_login(world.alice)
    first = client.get("/orgs/acme/audit/?kind=resolution").content.decode()
    second = client.get("/orgs/acme/audit/?kind=resolution&page=2").content.decode()
    assert "Page 1 of 2" in first and "token:n59" in first and "token:n09" not in first
    assert "Page 2 of 2" in second and "token:n09" in second and "token:n59" not in second
    assert "60 entries" in first


def test_sign_ins_of_the_organizations_people_appear_others_do_not(client, world):
    from django.test import Client

    for username, password in [("bob", "bob-password"), ("charlie", "charlie-password")]:
        Client().post("/accounts/login/", {"username": username, "password": password})
    Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})
    Client().post("/accounts/login/", {"username": "charlie", "password": "wrong"})
    client.force_login(world.alice)
    rows, _ = _csv(client, "/orgs/acme/audit.csv?kind=login")
    # alice's own sign-in (force_login sends the signal) is there too, newest first
    assert [row[2] for row in rows[1:]] == ["alice", "bob"]
    rows, _ = _csv(client, "/orgs/acme/audit.csv?kind=login_failed")
    assert [row[2] for row in rows[1:]] == ["bob"]


def test_another_organizations_changes_never_appear(client, world):
    make_group(world.globex, "theirs", access="all", secrets={"T": "globex-secret"})
    client.force_login(world.alice)
    page = client.get("/orgs/acme/audit/").content.decode()
    assert "theirs" not in page


def test_the_grants_view_says_how_each_group_reaches_each_project(client, world):
    team = Team.objects.create(organization=world.acme, slug="ml")
    ml = world.web.__class__.objects.create(
        organization=world.acme, slug="ml-train", name="ML", environment="staging"
    )
    ml.teams.add(team)
    make_group(world.acme, "everyone", access="all")
    make_group(world.acme, "prod", environment="production", access="all")
    make_group(world.acme, "chosen", projects=[world.web])
    make_group(world.acme, "ml-secrets", teams=[team])
    audit.record(
        AuditEvent.Kind.RESOLUTION, project=world.web, actor="token:oev_x", token_prefix="oev_x"
    )
    # A person reading the environment is not a run.
    audit.record(AuditEvent.Kind.RESOLUTION, project=ml, actor="system:resolve_env")
    client.force_login(world.alice)
    response = client.get("/orgs/acme/grants/")
    matrix = {
        row.project.slug: {
            g.name: c.how or c.skipped_because
            for g, c in zip(response.context["matrix"].groups, row.cells, strict=True)
        }
        for row in response.context["matrix"].rows
    }
    assert matrix["web"] == {
        "chosen": "selected",
        "everyone": "all",
        "ml-secrets": "not granted",
        "prod": "all",
    }
    assert matrix["ml-train"]["ml-secrets"] == "team"
    assert matrix["ml-train"]["prod"].startswith("environment guard")
    last = {row.project.slug: row.last_resolution for row in response.context["matrix"].rows}
    assert last["web"] is not None and last["ml-train"] is None
    assert "skipped" in response.content.decode()


def test_a_timeline_page_costs_the_same_queries_whatever_the_history_size(client, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(world.alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get("/orgs/acme/audit/").status_code == 200
        return len(context)

    def grow(prefix: str) -> None:
        for i in range(4):
            group = make_group(
                world.acme, f"{prefix}{i}", projects=[world.web], secrets={"S": "v", "T": "w"}
            )
            for variable in group.variables.all():
                variable.value = "rotated"
                variable.save()
            audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor="token:x")

    # The cost depends on which tables the page shows (one batch each), not on how many
    # rows the history holds: once a page is full of the same kinds of rows, it stays put.
    for round_ in "abcdef":
        grow(round_)
    before = queries()
    # Fewer queries than the 50 entries on the page: nothing is fetched per entry.
    assert before < 50
    for round_ in "ghijkl":
        grow(round_)
    assert queries() == before
