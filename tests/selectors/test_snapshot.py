"""Every resolution reads one moment of the database: a change committed between its read
of the groups and its read of their definitions must not give an environment that never
existed (one in 1,973 responses had a wrong conflict winner under 9 applies/s)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from orgenv.models import Variable, VariableGroup
from orgenv.selectors.layers import load_layers
from orgenv.tokens import token_issue
from tests.concurrency import between_statements
from tests.conftest import make_group

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def contest(world):
    """`low` and `high` both define X; `high` has the higher priority and wins."""
    low = make_group(world.acme, "low", access="all", priority=0, variables={"X": "old-loser"})
    make_group(world.acme, "high", access="all", priority=1, variables={"X": "old-winner"})
    return low


def swap_winner() -> None:
    """One committed change: `low` now wins with a new value, and `high`'s value changes."""
    with transaction.atomic():
        VariableGroup.objects.filter(name="low").update(priority=2)
        Variable.objects.filter(group__name="low").update(value="new-winner")
        Variable.objects.filter(group__name="high").update(value="new-loser")


def after_the_groups_query(sql: str) -> bool:
    return f'FROM "{VariableGroup._meta.db_table}"' in sql and "EXISTS" in sql


# Before the change X is old-winner, after it new-winner. A torn read (old priorities, new
# definitions) gives new-loser, which no committed state ever had.
def test_the_runner_api_reads_one_snapshot(contest, world):
    raw = token_issue(project=world.web, name="ci")[1]
    with between_statements(after_the_groups_query, swap_winner, times=1) as interleaving:
        body = Client().get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert interleaving.runs == 1 and interleaving.errors == []
    assert body["variables"]["X"] == "old-winner"
    assert body["sources"]["X"] == "group:high"
    # …and the next resolution sees the change.
    body = Client().get("/api/v1/environment", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert body["variables"]["X"] == "new-winner"


def test_the_member_api_reads_one_snapshot(contest, world):
    client = Client()
    client.force_login(world.alice)
    with between_statements(after_the_groups_query, swap_winner, times=1) as interleaving:
        body = client.get("/api/v1/projects/acme/web/environment").json()
    assert interleaving.runs == 1 and interleaving.errors == []
    assert body["variables"]["X"] == "old-winner"


def test_resolve_env_reads_one_snapshot(contest, world):
    out = io.StringIO()
    with between_statements(after_the_groups_query, swap_winner, times=1) as interleaving:
        call_command("resolve_env", "acme/web", "--format", "json", stdout=out)
    assert interleaving.runs == 1 and interleaving.errors == []
    assert json.loads(out.getvalue())["variables"]["X"] == "old-winner"


def test_the_snapshot_costs_two_statements(contest, world, django_assert_num_queries):
    # BEGIN (REPEATABLE READ, READ ONLY on PostgreSQL; DEFERRED on SQLite), the groups, the
    # definitions, COMMIT.
    with django_assert_num_queries(4) as captured:
        load_layers(world.web)
    assert captured.captured_queries[0]["sql"].startswith("BEGIN")
    assert captured.captured_queries[-1]["sql"] == "COMMIT"
