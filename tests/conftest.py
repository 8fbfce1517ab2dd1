"""Personas shared by every test module.

- alice administers organization `acme` (staff, admin membership);
- bob is a member of acme and of project `web`;
- charlie administers another organization, `globex`, and nothing of acme.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from orgenv.api.throttling import _AtomicRate
from orgenv.models import Membership, Organization, Project, Team, Variable, VariableGroup


@dataclass
class World:
    acme: Organization
    globex: Organization
    alice: User
    bob: User
    charlie: User
    web: Project
    globex_app: Project


@pytest.fixture
def world(db) -> World:
    acme = Organization.objects.create(slug="acme", name="Acme ML")
    globex = Organization.objects.create(slug="globex", name="Globex")
    alice = User.objects.create_user("alice", password="alice-password", is_staff=True)
    bob = User.objects.create_user("bob", password="bob-password")
    charlie = User.objects.create_user("charlie", password="charlie-password", is_staff=True)
    Membership.objects.create(user=alice, organization=acme, role="admin")
    Membership.objects.create(user=bob, organization=acme, role="member")
    Membership.objects.create(user=charlie, organization=globex, role="admin")
    web = Project.objects.create(
        organization=acme, slug="web", name="Web", environment="production"
    )
    web.members.add(bob)
    globex_app = Project.objects.create(organization=globex, slug="app", name="App")
    return World(acme, globex, alice, bob, charlie, web, globex_app)


@pytest.fixture
def fresh_throttles(monkeypatch):
    """Throttle counters live in the cache, which outlives a test: start and end each test
    of the API with none, so requests of one test never count against the next.

    The limits count in fixed windows, of a minute in most tests: a test that straddled the
    turn of one would see its counts restart halfway. The throttles' clock runs at real
    speed from 1 s into a fresh minute, so that a test has 59 s of one window.

    Only the local-memory cache of the test settings is cleared, the very object seen at
    set-up: a test that switches to the shared Redis (under a key prefix of its own) tears
    down before this fixture, and clearing Redis then would flush every other session's
    keys."""
    local = caches["default"]
    assert isinstance(local, LocMemCache), "the test settings must use the local-memory cache"
    local.clear()
    shift = 61 - time.time() % 60
    monkeypatch.setattr(_AtomicRate, "timer", staticmethod(lambda: time.time() + shift))
    yield
    local.clear()


def make_group(
    org: Organization,
    name: str,
    *,
    variables: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    projects: list[Project] = (),
    teams: list[Team] = (),
    **fields,
) -> VariableGroup:
    """A group with plain and secret variables, granted to projects and teams."""
    group = VariableGroup.objects.create(organization=org, name=name, **fields)
    group.projects.add(*projects)
    group.teams.add(*teams)
    for name_, value in (variables or {}).items():
        Variable.objects.create(group=group, name=name_, value=value)
    for name_, value in (secrets or {}).items():
        Variable.objects.create(group=group, name=name_, value=value, is_secret=True)
    return group


def pytest_sessionfinish(session, exitstatus):
    """Record which database this session ran on, for .ci/run to check both passes ran."""
    from pathlib import Path

    from django.db import connection

    if getattr(session, "testscollected", 0) and exitstatus == 0:
        out = Path(__file__).resolve().parent.parent / "artifacts" / "databases"
        out.mkdir(parents=True, exist_ok=True)
        (out / connection.vendor).write_text(
            f"{session.testscollected} tests passed on {connection.vendor}\n"
        )


def production_group(
    world: World, *, variables: dict[str, str] | None = None, secrets: dict[str, str] | None = None
) -> VariableGroup:
    """acme's `production` group, labelled production and granted to web (bob's project):
    the group most tests resolve."""
    return make_group(
        world.acme,
        "production",
        environment="production",
        projects=[world.web],
        variables=variables,
        secrets=secrets,
    )


def confirmed(client, response):
    """The answer to an admin save, through its impact preview when one is shown: Confirm
    pressed, as the admin does after reading it (orgenv.admin.previewing). Any other answer
    (a redirect, a form with errors) is returned as it is."""
    from orgenv.admin.previewing import CONFIRM, PREVIEW_ID

    preview = response.context.get("preview") if response.context is not None else None
    if response.status_code != 200 or preview is None:
        return response
    return client.post(
        response.wsgi_request.get_full_path(),
        {PREVIEW_ID: preview.preview_id, CONFIRM: "Confirm and save"},
    )
