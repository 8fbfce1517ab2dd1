"""As-of resolution (orgenv.selectors.as_of): snapshot the live environment at known times, change
things, and check that resolving each past time gives back each snapshot."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orgenv.models import AuditEvent, Project, ProjectVariable, Team, Variable, VariableGroup
from orgenv.selectors.as_of import AsOfError, find_project, layers_as_of, parse_when
from orgenv.selectors.layers import load_layers, reveal
from tests.conftest import make_group


def _env(layers) -> dict[str, tuple[str, bool, str]]:
    past = layers.as_of is not None
    return {
        n: (reveal(r, cache=not past), r.is_secret, r.source)
        for n, r in layers.resolution.variables.items()
    }


class Snapshots:
    """Remembers (time, live environment) pairs for one project."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.taken: list[tuple[datetime, dict]] = []

    def take(self) -> None:
        self.taken.append((timezone.now(), _env(load_layers(self.project))))
        # Later changes must get a strictly later history_date than this snapshot.
        time.sleep(0.002)

    def assert_all_match(self) -> None:
        for when, expected in self.taken:
            assert _env(layers_as_of(self.project, when)) == expected, when


def test_as_of_gives_back_every_snapshot_after_edits_deletes_and_renames(world):
    snaps = Snapshots(world.web)
    team = Team.objects.create(organization=world.acme, slug="ml")
    shared = make_group(world.acme, "shared", access="all", variables={"REGION": "eu"})
    prod = make_group(
        world.acme,
        "prod",
        environment="production",
        projects=[world.web],
        variables={"POOL": "10"},
        secrets={"DB_PASSWORD": "first-password"},
    )
    snaps.take()

    # rotate a secret, change a public value, add a project override
    secret = Variable.objects.get(group=prod, name="DB_PASSWORD")
    secret.value = "second-password"
    secret.save()
    pool = Variable.objects.get(group=prod, name="POOL")
    pool.value = "20"
    pool.save()
    ProjectVariable.objects.create(project=world.web, name="REGION", value="us")
    snaps.take()

    # rename a group and raise its priority (it now wins the clash), grant through a team
    shared.name = "shared-renamed"
    shared.priority = 5
    shared.save()
    Variable.objects.create(group=shared, name="POOL", value="99")
    ml = make_group(world.acme, "ml-secrets", teams=[team], secrets={"WANDB": "wandb-key"})
    world.web.teams.add(team)
    snaps.take()

    # delete a variable, a whole group, and the project override; revoke the team grant
    Variable.objects.get(group=shared, name="POOL").delete()
    prod.delete()
    ProjectVariable.objects.filter(project=world.web).delete()
    ml.teams.remove(team)
    snaps.take()

    # relabel the project: the labelled group would be skipped (it is gone anyway)
    world.web.environment = "staging"
    world.web.save()
    make_group(world.acme, "late", access="all", variables={"LATE": "yes"})
    snaps.take()

    assert [len(env) for _, env in snaps.taken] == [3, 3, 4, 1, 2]
    snaps.assert_all_match()


def test_as_of_follows_the_environment_guard_as_it_was(world):
    snaps = Snapshots(world.web)
    make_group(
        world.acme, "prod", access="all", environment="production", secrets={"KEY": "prod-key"}
    )
    snaps.take()
    world.web.environment = "development"
    world.web.save()
    snaps.take()
    assert snaps.taken[0][1] == {"KEY": ("prod-key", True, "group:prod")}
    assert snaps.taken[1][1] == {}
    snaps.assert_all_match()


def test_a_grant_made_from_the_project_side_is_in_the_groups_past(world):
    snaps = Snapshots(world.web)
    group = make_group(world.acme, "chosen", variables={"A": "1"})
    snaps.take()
    world.web.granted_groups.add(group)
    snaps.take()
    world.web.granted_groups.clear()
    snaps.take()
    assert [env for _, env in snaps.taken] == [{}, {"A": ("1", False, "group:chosen")}, {}]
    snaps.assert_all_match()


def test_deleting_a_team_ends_its_grants_in_the_past_too(world):
    snaps = Snapshots(world.web)
    team = Team.objects.create(organization=world.acme, slug="ml")
    world.web.teams.add(team)
    make_group(world.acme, "ml", teams=[team], variables={"A": "1"})
    snaps.take()
    team.delete()
    snaps.take()
    assert [env for _, env in snaps.taken] == [{"A": ("1", False, "group:ml")}, {}]
    snaps.assert_all_match()


def test_a_time_before_the_project_existed_is_a_clear_error(world):
    with pytest.raises(AsOfError, match=r"did not exist at .* \(it was created at "):
        layers_as_of(world.web, world.web.history.earliest().history_date - timedelta(days=1))


def test_a_deleted_project_is_found_by_its_name_at_that_time(world):
    make_group(world.acme, "g", access="all", variables={"A": "1"})
    when = timezone.now()
    time.sleep(0.002)
    pk = world.web.pk
    world.web.delete()
    past = find_project("acme", "web", when)
    assert past.pk == pk
    assert _env(layers_as_of(past, when)) == {"A": ("1", False, "group:g")}
    with pytest.raises(AsOfError, match="no project acme/web"):
        find_project("acme", "web", timezone.now())


def test_resolve_env_as_of_resolves_a_project_deleted_since(world):
    make_group(world.acme, "g", access="all", secrets={"KEY": "kept-key"})
    when = timezone.now()
    time.sleep(0.002)
    world.web.delete()
    out = StringIO()
    call_command(
        "resolve_env", "acme/web", "--format", "dotenv", "--as-of", when.isoformat(), stdout=out
    )
    assert out.getvalue() == "KEY='kept-key'\n"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RESOLUTION)
    assert (event.project, event.project_slug, event.organization_slug) == (None, "web", "acme")
    assert event.sources == {"KEY": "group:g"}
    assert event.detail == {"format": "dotenv", "as_of": when.isoformat()}
    with pytest.raises(CommandError, match="There was no project acme/web at "):
        call_command("resolve_env", "acme/web", "--as-of", timezone.now().isoformat())
    with pytest.raises(CommandError, match="There is no project 'web' in organization 'acme'"):
        call_command("resolve_env", "acme/web")


def test_the_latest_row_per_object_ties_break_on_history_id(world):
    """Two history rows with the same history_date: the later history_id is the state."""
    group = make_group(world.acme, "g", access="all", variables={"A": "first"})
    variable = group.variables.get()
    variable.value = "second"
    variable.save()
    rows = Variable.history.filter(id=variable.pk).order_by("history_id")
    same = rows.first().history_date
    rows.update(history_date=same)
    VariableGroup.history.filter(id=group.pk).update(history_date=same)
    Project.history.filter(id=world.web.pk).update(history_date=same)
    assert _env(layers_as_of(world.web, same)) == {"A": ("second", False, "group:g")}


def test_as_of_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    for i in range(4):
        make_group(world.acme, f"g{i}", access="all", variables={f"V{i}": "x", "W": str(i)})
    ProjectVariable.objects.create(project=world.web, name="P", value="p")
    world.web.teams.add(Team.objects.create(organization=world.acme, slug="ml"))
    when = timezone.now()
    # project row, project teams, groups, group→project grants, group→team grants,
    # variables (with the candidate subquery), project variables
    with django_assert_num_queries(7):
        layers_as_of(world.web, when)
    assert VariableGroup.objects.count() == 4


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-31T14:05:00Z", "2026-01-31T14:05:00+00:00"),
        ("2026-01-31T14:05:00+02:00", "2026-01-31T14:05:00+02:00"),
        ("2026-01-31 14:05", "2026-01-31T14:05:00+00:00"),
        ("2026-01-31", "2026-01-31T00:00:00+00:00"),
    ],
)
def test_it_parses_iso_8601_times_taking_naive_ones_as_utc(text, expected):
    assert parse_when(text).isoformat() == expected


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-13-01",
        "2026-02-30T10:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:00-05:00",
    ],
)
def test_it_rejects_a_time_that_is_not_iso_8601_or_not_a_real_moment(text):
    with pytest.raises(
        AsOfError, match="not an ISO 8601 date or time between the years 1 and 9999"
    ):
        parse_when(text)


def test_resolve_env_as_of_prints_the_past_and_explains_bad_input(world):
    group = make_group(world.acme, "g", access="all", secrets={"KEY": "old-key"})
    when = timezone.now()
    time.sleep(0.002)
    key = Variable.objects.get(group=group)
    key.value = "new-key"
    key.save()
    out = StringIO()
    call_command(
        "resolve_env", "acme/web", "--format", "dotenv", "--as-of", when.isoformat(), stdout=out
    )
    assert out.getvalue() == "KEY='old-key'\n"
    with pytest.raises(CommandError, match="did not exist at 2000-01-01T00:00:00"):
        call_command("resolve_env", "acme/web", "--as-of", "2000-01-01", stdout=StringIO())
    with pytest.raises(CommandError, match="--as-of: 'soon' is not an ISO 8601"):
        call_command("resolve_env", "acme/web", "--as-of", "soon", stdout=StringIO())
    for bad in ("2026-13-01", "0001-01-01T00:00:00+14:00"):
        with pytest.raises(CommandError, match=f"--as-of: '{re.escape(bad)}' is not an ISO"):
            call_command("resolve_env", "acme/web", "--as-of", bad, stdout=StringIO())


def test_as_of_still_reads_the_past_after_the_old_key_is_retired(world, settings):
    from cryptography.fernet import Fernet

    group = make_group(world.acme, "g", access="all", secrets={"KEY": "old-key"})
    when = timezone.now()
    time.sleep(0.002)
    key = Variable.objects.get(group=group)
    key.value = "new-key"
    key.save()
    new = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new, *settings.FERNET_KEYS]
    call_command("rotate_keys", stdout=StringIO())
    settings.FERNET_KEYS = [new]  # the old key is gone: history must have been re-encrypted
    assert _env(layers_as_of(world.web, when)) == {"KEY": ("old-key", True, "group:g")}
