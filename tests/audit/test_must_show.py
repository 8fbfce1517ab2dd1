"""Issue 5's "must show", end to end on the demo: rotate PRODUCTION_SECRET in the admin,
resolve the past with `resolve_env --as-of`, and read who changed it on the audit page."""

from __future__ import annotations

import json
import re
import time
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from orgenv.models import Variable
from tests.conftest import confirmed

DEMO_SECRETS = (
    "wandb-demo-key",
    "postgresql://user:pass@db.acme.example.com/mldata",
    "sk-demo",
    "hf_demo",
    "AKIADEMO",
    "demo-secret",
    "https://user:pass@pypi.acme.example.com/simple",
    "npm_demo",
)
ROTATED = "rotated-production-secret-5d1"


def _resolve(*args: str) -> dict:
    out = StringIO()
    call_command("resolve_env", "acme/production_db", "--format", "json", *args, stdout=out)
    return json.loads(out.getvalue())["variables"]


def _no_secret_in(text: str) -> None:
    for value in (*DEMO_SECRETS, ROTATED):
        assert value not in text, value
    # "hidden" is the demo's PRODUCTION_SECRET; the word is also HTML (type="hidden"), so
    # look for it in the text and the attribute-free CSV only.
    shown = re.sub(r"<[^>]*>", " ", text)
    match = re.search(r"(?<![-\w])hidden(?![-\w])", shown)
    assert not match, shown[max(0, match.start() - 200) : match.end() + 50]


def test_rotating_the_demo_secret_keeps_its_past_and_names_who_changed_it(client, db):
    call_command("demo", stdout=StringIO())
    before = timezone.now()
    time.sleep(0.002)

    response = client.post("/accounts/login/", {"username": "admin", "password": "admin"})
    assert response.status_code == 302
    secret = Variable.objects.get(group__name="production", name="PRODUCTION_SECRET")
    response = client.post(
        f"/admin/orgenv/variable/{secret.pk}/change/",
        {
            "group": secret.group_id,
            "name": "PRODUCTION_SECRET",
            "value": ROTATED,
            "is_secret": "on",
        },
    )
    response = confirmed(client, response)  # after reading the impact preview
    assert response.status_code == 302, response.content.decode()[:2000]

    assert _resolve()["PRODUCTION_SECRET"] == ROTATED
    assert _resolve("--as-of", before.isoformat())["PRODUCTION_SECRET"] == "hidden"

    page = client.get("/orgs/acme/audit/?group=production").content.decode()
    assert re.search(
        r"admin</td>.*?variable PRODUCTION_SECRET in group production.*?value: value changed",
        page,
        re.S,
    )
    _no_secret_in(page)
    csv = b"".join(client.get("/orgs/acme/audit.csv").streaming_content).decode()
    assert "variable PRODUCTION_SECRET in group production,value: value changed" in csv
    _no_secret_in(csv)
    for number in range(1, 6):  # every page of the unfiltered timeline
        _no_secret_in(client.get(f"/orgs/acme/audit/?page={number}").content.decode())
    history = client.get(f"/admin/orgenv/variable/{secret.pk}/history/").content.decode()
    assert "value changed" in history
    _no_secret_in(history)


def test_no_history_page_of_the_demo_shows_a_secret(client, db):
    from orgenv.models import (
        Organization,
        Project,
        ProjectToken,
        ProjectVariable,
        Team,
        VariableGroup,
    )

    call_command("demo", stdout=StringIO())
    call_command("issue_token", "acme/production_db", "--name", "ci", stdout=StringIO())
    client.post("/accounts/login/", {"username": "admin", "password": "admin"})
    # Rotate every secret once through the admin, so each history has a value change.
    for secret in Variable.objects.filter(is_secret=True):
        response = client.post(
            f"/admin/orgenv/variable/{secret.pk}/change/",
            {"group": secret.group_id, "name": secret.name, "value": ROTATED, "is_secret": "on"},
        )
        _no_secret_in(response.content.decode())  # the impact preview, for a granted group
        assert confirmed(client, response).status_code == 302
    pages = 0
    for model in (Organization, Team, Project, VariableGroup, Variable, ProjectVariable):
        for obj in model.objects.all():
            name = model._meta.model_name
            urls = [f"/admin/orgenv/{name}/{obj.pk}/history/"] + [
                f"/admin/orgenv/{name}/{obj.pk}/history/{h.history_id}/" for h in obj.history.all()
            ]
            for url in urls:
                response = client.get(url)
                assert response.status_code == 200, url
                _no_secret_in(response.content.decode())
                pages += 1
    token = ProjectToken.objects.get()
    page = client.get(f"/admin/orgenv/projecttoken/{token.pk}/history/").content.decode()
    assert token.digest not in page
    assert pages > 60
