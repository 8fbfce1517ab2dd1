"""Replay: `resolve_env --resolution ID` prints the very bytes the runner received, from
history, even after the values were rotated or deleted. Real HTTP against live_server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from orgenv import services
from orgenv.models import AuditEvent, ProjectVariable, Variable
from orgenv.tokens import token_issue
from tests.conftest import make_group

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
TRICKY = 'it\'s "quoted"\n$HOME and ${X}\ttab é'


def fetch(url: str, raw: str, fmt: str) -> tuple[bytes, int]:
    request = urllib.request.Request(
        f"{url}/api/v1/environment?format={fmt}", headers={"Authorization": f"Bearer {raw}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return response.read(), int(response.headers["X-Orgenv-Resolution"])


def replay(resolution: int, fmt: str) -> bytes:
    out = io.StringIO()
    call_command("resolve_env", "--resolution", str(resolution), "--format", fmt, stdout=out)
    return out.getvalue().encode("utf-8")


@pytest.fixture
def project(world):
    make_group(
        world.acme,
        "production",
        projects=[world.web],
        variables={"MODE": "live", "SHARED": "from-group"},
        secrets={"DATABASE_PASSWORD": "first-password", "NOTE": TRICKY},
    )
    make_group(world.acme, "other", projects=[world.web], variables={"MODE": "conflicting"})
    ProjectVariable.objects.create(project=world.web, name="SHARED", value="from-project")
    return world.web


def test_replay_equals_the_runner_body_byte_for_byte_in_every_format_after_rotation(
    live_server, project
):
    _, raw = token_issue(project=project, name="ci")
    received = {fmt: fetch(live_server.url, raw, fmt) for fmt in ("json", "dotenv", "shell")}
    group = project.granted_groups.get(name="production")
    services.variable_set(group=group, name="DATABASE_PASSWORD", value="rotated", is_secret=True)
    services.variable_set(group=group, name="NOTE", value="new note", is_secret=True)
    Variable.objects.get(group=group, name="MODE").delete()

    for fmt, (body, resolution) in received.items():
        assert replay(resolution, fmt) == body, fmt
    payload = json.loads(received["json"][0])
    assert payload["variables"]["DATABASE_PASSWORD"] == "first-password"
    assert payload["variables"]["NOTE"] == TRICKY
    assert payload["conflicts"] == [
        {"name": "MODE", "winner": "group:other", "shadowed": ["group:production"]}
    ]
    # A fresh fetch gets the new values; its replay, those.
    body, resolution = fetch(live_server.url, raw, "json")
    assert json.loads(replay(resolution, "json"))["variables"]["DATABASE_PASSWORD"] == "rotated"
    assert replay(resolution, "json") == body


def test_after_an_orgenv_run_its_resolution_id_replays_what_the_child_received(
    live_server, project, tmp_path
):
    _, raw = token_issue(project=project, name="ci")
    dump = tmp_path / "env.json"
    child = f"import json, os; open({str(dump)!r}, 'w').write(json.dumps(dict(os.environ)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGENV_")}
    env.update(ORGENV_URL=live_server.url, ORGENV_TOKEN=raw, NO_PROXY="127.0.0.1,localhost")
    completed = subprocess.run(
        [sys.executable, "-m", "orgenv.runner.cli", "run", "--", sys.executable, "-c", child],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    received = json.loads(dump.read_text())
    group = project.granted_groups.get(name="production")
    services.variable_set(group=group, name="DATABASE_PASSWORD", value="rotated", is_secret=True)

    replayed = json.loads(replay(int(received["ORGENV_RESOLUTION_ID"]), "json"))
    assert replayed["variables"] == {name: received[name] for name in replayed["variables"]}
    assert replayed["variables"]["DATABASE_PASSWORD"] == "first-password"
    # The replay is itself an audited read of the same manifest.
    again = AuditEvent.objects.latest("id")
    assert again.detail == {"format": "json", "replay_of": int(received["ORGENV_RESOLUTION_ID"])}
    assert (
        again.manifest_id == AuditEvent.objects.get(pk=received["ORGENV_RESOLUTION_ID"]).manifest_id
    )


def test_what_cannot_be_replayed_says_why(world):
    event = AuditEvent.objects.create(kind="login", actor="alice")
    with pytest.raises(CommandError, match=f"Audit event {event.pk} is not a resolution"):
        replay(event.pk, "json")
    old = AuditEvent.objects.create(kind="resolution", variables={"A": "project"})
    with pytest.raises(CommandError, match="recorded before manifests"):
        replay(old.pk, "json")
    with pytest.raises(CommandError, match="There is no audit event 999999"):
        replay(999999, "json")
