"""resolve_env ORG/PROJECT in json, dotenv and shell, and --explain."""

from __future__ import annotations

import io
import json
import subprocess
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from dotenv import dotenv_values

from orgenv.models import AuditEvent, Project, ProjectVariable
from tests.conftest import make_group, production_group

SECRET = "pa$$ 'word'\nline2"


@pytest.fixture
def seeded(world):
    make_group(world.acme, "alpha", access="all", variables={"REGION": "eu", "URL": "alpha-url"})
    make_group(world.acme, "beta", access="all", variables={"REGION": "us"})
    production_group(world, secrets={"DB_PASSWORD": SECRET, "TOKEN": "group-token"})
    make_group(world.acme, "staging", environment="staging", access="all", variables={"ST": "1"})
    ProjectVariable.objects.create(project=world.web, name="URL", value="project-url")
    ProjectVariable.objects.create(
        project=world.web, name="TOKEN", value="proj-tok", is_secret=True
    )
    return world


def resolve_env(*args: str) -> str:
    out = StringIO()
    call_command("resolve_env", *args, stdout=out)
    return out.getvalue()


def test_json_is_the_spec_shape_without_a_resolution_id(seeded):
    assert json.loads(resolve_env("acme/web")) == {
        "organization": "acme",
        "project": "web",
        "variables": {
            "DB_PASSWORD": SECRET,
            "REGION": "eu",
            "TOKEN": "proj-tok",
            "URL": "project-url",
        },
        "secrets": ["DB_PASSWORD", "TOKEN"],
        "sources": {
            "DB_PASSWORD": "group:production",
            "REGION": "group:alpha",
            "TOKEN": "project",
            "URL": "project",
        },
        "conflicts": [{"name": "REGION", "winner": "group:alpha", "shadowed": ["group:beta"]}],
    }


def test_dotenv_reads_back_identically(seeded):
    text = resolve_env("acme/web", "--format", "dotenv")
    assert dict(dotenv_values(stream=io.StringIO(text), interpolate=False)) == {
        "DB_PASSWORD": SECRET,
        "REGION": "eu",
        "TOKEN": "proj-tok",
        "URL": "project-url",
    }


def test_shell_sources_cleanly_in_sh(seeded):
    script = resolve_env("acme/web", "--format", "shell")
    out = subprocess.run(
        ["/bin/sh", "-c", '. /dev/stdin; printf "%s|%s" "$DB_PASSWORD" "$URL"'],
        input=script.encode(),
        capture_output=True,
        check=True,
    )
    assert out.stdout.decode() == f"{SECRET}|project-url"


def test_explain_shows_sources_shadowed_definitions_groups_and_conflicts_masking_secrets(seeded):
    text = resolve_env("acme/web", "--explain")
    assert "acme/web (production)" in text
    assert "  URL = 'project-url'  from project" in text
    assert "      shadows group:alpha: 'alpha-url'" in text
    assert "  TOKEN = ••••••  from project [secret]" in text
    assert "      shadows group:production: ••••••" in text
    assert "  REGION = 'eu'  from group:alpha" in text
    assert "      shadows group:beta: 'us'" in text
    assert "  staging (priority 0) does not reach it: environment guard" in text
    assert "  production (priority 0) reaches it (selected)" in text
    assert "  REGION: group:alpha wins over group:beta" in text
    for secret in ("pa$$", "proj-tok", "group-token"):
        assert secret not in text


def test_explain_with_show_secrets_prints_them(seeded):
    text = resolve_env("acme/web", "--explain", "--show-secrets")
    assert "TOKEN = 'proj-tok'" in text
    assert "shadows group:production: 'group-token'" in text
    assert repr(SECRET) in text


def test_explain_of_an_empty_project_says_so(world):
    Project.objects.create(organization=world.globex, slug="empty", name="Empty")
    text = resolve_env("globex/empty", "--explain")
    assert "Variables:\n  (none)" in text and "Conflicts:\n  (none)" in text


def test_each_run_is_recorded_as_a_resolution_without_values(seeded):
    resolve_env("acme/web", "--format", "shell")
    event = AuditEvent.objects.get(kind="resolution")
    assert (event.actor, event.project, event.detail) == (
        "system:resolve_env",
        seeded.web,
        {"format": "shell"},
    )
    assert event.sources["TOKEN"] == "project"
    assert "proj-tok" not in str(AuditEvent.objects.values().get())


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("acme/nope", "There is no project 'nope' in organization 'acme'."),
        ("nobody/web", "There is no project 'web' in organization 'nobody'."),
        ("acme", "'acme' is not ORG/PROJECT"),
    ],
)
def test_an_unknown_project_is_a_command_error_naming_it(world, label, message):
    with pytest.raises(CommandError) as caught:
        resolve_env(label)
    assert message in str(caught.value)


def test_a_value_no_key_decrypts_is_one_line_not_a_traceback(world, settings):
    make_group(world.acme, "g", access="all", secrets={"S": "secret-value"})
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="no key in FERNET_KEYS decrypts it"):
        call_command("resolve_env", "acme/web")
