"""Paste .env on a group page: import_env's rules, a review proposing secrets, all or nothing."""

from __future__ import annotations

import pytest

from orgenv.models import AuditEvent, Variable
from tests.conftest import make_group

pytestmark = pytest.mark.django_db

TEXT = """# pasted from a laptop
export DATABASE_URL=postgres://app:hunter2@db.internal/app
OPENAI_API_KEY="sk-pasted-7Qx"
LOG_LEVEL=info
"""


def paste_url(group) -> str:
    return f"/admin/orgenv/variablegroup/{group.pk}/paste/"


@pytest.fixture
def group(world):
    return make_group(world.acme, "app", variables={"LOG_LEVEL": "debug"})


def test_the_review_proposes_secret_looking_names_and_writes_nothing(client, world, group):
    client.force_login(world.alice)
    response = client.post(paste_url(group), {"step": "review", "text": TEXT})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert 'value="DATABASE_URL" aria-label="Secret DATABASE_URL" checked' in page
    assert 'value="OPENAI_API_KEY" aria-label="Secret OPENAI_API_KEY" checked' in page
    assert 'value="LOG_LEVEL" aria-label="Secret LOG_LEVEL">' in page  # not ticked
    assert "proposed: the value is a URL with a password" in page
    assert "proposed: the name ends with _KEY" in page
    assert "replaces the value" in page  # LOG_LEVEL exists
    assert list(group.variables.values_list("name", "value")) == [("LOG_LEVEL", "debug")]


def test_importing_writes_every_variable_with_the_confirmed_secrets(client, world, group):
    client.force_login(world.alice)
    response = client.post(
        paste_url(group),
        {"step": "import", "text": TEXT, "secret": ["OPENAI_API_KEY", "DATABASE_URL"]},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/admin/orgenv/variablegroup/{group.pk}/change/"
    stored = {v.name: (v.value, v.is_secret) for v in group.variables.all()}
    assert stored == {
        "DATABASE_URL": ("postgres://app:hunter2@db.internal/app", True),
        "OPENAI_API_KEY": ("sk-pasted-7Qx", True),
        "LOG_LEVEL": ("info", False),
    }
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.VARIABLES_IMPORTED)
    assert (event.actor, event.group_name) == ("alice", "app")
    assert event.detail["created"] == ["DATABASE_URL", "OPENAI_API_KEY"]
    assert "hunter2" not in str(event.detail) and "sk-pasted" not in str(event.detail)
    message = client.get(response["Location"]).content.decode()
    assert "Imported 3 variable(s) into app: 2 created, 1 updated, 0 unchanged." in message
    assert "sk-pasted-7Qx" not in message


def test_a_bad_line_refuses_everything_with_line_numbers(client, world, group):
    client.force_login(world.alice)
    text = 'GOOD=1\n2BAD=x\nORGENV_TOKEN=y\nGOOD=2\nQUOTED="never closed\n'
    response = client.post(paste_url(group), {"step": "import", "text": text})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was imported" in page
    assert "line 5: the double-quoted value of QUOTED is never closed." in page
    response = client.post(paste_url(group), {"step": "import", "text": text[:-21]})
    page = response.content.decode()
    assert "line 2: &#x27;2BAD&#x27; is not a valid variable name" in page
    assert "line 3: &#x27;ORGENV_TOKEN&#x27; starts with ORGENV_" in page
    assert "line 4: GOOD is set twice (first on line 1)." in page
    assert not Variable.objects.filter(name="GOOD").exists()


def test_an_existing_secret_stays_secret_and_is_never_shown(client, world):
    group = make_group(world.acme, "app", secrets={"DB_PASS": "old-secret-Value"})
    client.force_login(world.alice)
    page = client.post(
        paste_url(group), {"step": "review", "text": "DB_PASS=new-secret-Value\n"}
    ).content.decode()
    assert "stays secret" in page and "old-secret-Value" not in page
    client.post(paste_url(group), {"step": "import", "text": "DB_PASS=new-secret-Value\n"})
    variable = group.variables.get()
    assert (variable.value, variable.is_secret) == ("new-secret-Value", True)


def test_another_organizations_admin_cannot_paste(client, world, group):
    client.force_login(world.charlie)
    assert client.get(paste_url(group)).status_code == 404
    response = client.post(paste_url(group), {"step": "import", "text": "HACKED=1\n"})
    assert response.status_code == 404
    assert not group.variables.filter(name="HACKED").exists()
