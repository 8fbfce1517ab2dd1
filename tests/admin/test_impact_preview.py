"""Saving a group's or a project's page shows its impact first (orgenv.admin.previewing): the
difference per project, nothing written; Confirm writes exactly that, once, for the user and
page it was made for, within ten minutes, and only if the organization did not change since."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection

from orgenv import crypto
from orgenv.admin.previewing import BACK, CONFIRM, PREVIEW_ID, SESSION_KEY
from orgenv.models import (
    AuditEvent,
    Membership,
    Organization,
    ProjectVariable,
    Variable,
)
from orgenv.resolution.impact import difference, resolve_world
from orgenv.selectors.layers import load_layers
from orgenv.selectors.reach import load_world, opened
from tests.admin.conftest import OLD_SECRET
from tests.admin.test_groups import change_url, group_data
from tests.conftest import make_group

pytestmark = pytest.mark.django_db

NEW_SECRET = "typed-Secret-0b7c-never-shown"


def rows(group):
    """The inline rows of prod as stored: A, C, S."""
    return {v.name: v for v in group.variables.all()}


def edit(group) -> dict:
    """prod's page posted with A 1 → 2, S replaced, C deleted and B added."""
    v = rows(group)
    return group_data(
        group,
        [
            {"id": v["A"].pk, "name": "A", "value": "2"},
            {"id": v["C"].pk, "name": "C", "value": "c", "DELETE": "on"},
            {"id": v["S"].pk, "name": "S", "value": NEW_SECRET, "is_secret": True},
            {"name": "B", "value": "from-prod"},
        ],
    )


def preview(client, group, data=None):
    response = client.post(change_url(group), data or edit(group))
    assert response.status_code == 200, response.content.decode()[:2000]
    assert "preview" in response.context, "no preview was shown"
    return response


def confirm(client, url: str, preview_id: str):
    return client.post(url, {PREVIEW_ID: preview_id, CONFIRM: "Confirm and save"})


def written() -> tuple[int, ...]:
    """What a save leaves behind: rows, history rows, admin log entries, audit events."""
    return (
        Variable.objects.count(),
        Variable.history.count(),
        LogEntry.objects.count(),
        AuditEvent.objects.count(),
    )


def test_the_preview_names_every_project_and_kind_of_change_and_writes_nothing(client, world, prod):
    client.force_login(world.alice)
    before = written()
    generation = Organization.objects.get(pk=world.acme.pk).generation
    response = preview(client, prod)
    html = response.content.decode()
    assert "This change affects 2 projects." in html
    table = {
        project: [(r.name, r.kind, r.detail) for r in rows_]
        for project, rows_ in response.context["preview"].projects
    }
    assert table == {
        "api": [
            ("A", "changed", "'1' → '2'"),
            ("B", "added", "from group:prod"),
            ("C", "removed", "was from group:prod"),
            ("S", "changed", "value changed"),
        ],
        "web": [
            ("A", "changed", "'1' → '2'"),
            ("C", "removed", "was from group:prod"),
            ("S", "changed", "value changed"),
            ("B", "conflict appears", "group:other wins over group:prod (same priority)"),
        ],
    }
    assert '<th scope="rowgroup" colspan="3">Project web' in html
    assert '<th scope="col">Variable</th>' in html and "<caption>" in html
    assert NEW_SECRET not in html and OLD_SECRET not in html
    assert "no-store" in response["Cache-Control"]
    # A preview is not a change: no row, history row, log entry or audit event, and the
    # organization's generation is the one it had.
    assert written() == before
    assert Organization.objects.get(pk=world.acme.pk).generation == generation
    assert rows(prod)["S"].value == OLD_SECRET and rows(prod)["A"].value == "1"


def test_confirm_commits_exactly_what_was_previewed_with_a_normal_saves_records(
    client, world, prod
):
    client.force_login(world.alice)
    then = resolve_world(opened(load_world(world.acme)))
    shown = preview(client, prod).context["preview"]
    variables, history, log, audit = written()

    response = confirm(client, change_url(prod), shown.preview_id)
    assert response.status_code == 302
    assert response["Location"] == "/admin/orgs/acme/"
    stored = {n: (v.value, v.is_secret) for n, v in rows(prod).items()}
    assert stored == {"A": ("2", False), "B": ("from-prod", False), "S": (NEW_SECRET, True)}
    # What projects now receive differs from before by exactly what the preview said.
    now = resolve_world(opened(load_world(world.acme)))
    assert difference(then, now).lines() == shown.impact.lines()
    assert now["web"].variables["S"].value == NEW_SECRET
    # The same records as any save of the page: a history row per variable written (by
    # alice), one admin log entry; no audit event for the preview or the confirmation.
    assert written() == (variables, history + 4, log + 1, audit)
    kinds = {
        (h.name, h.history_type, h.history_user_id)
        for h in Variable.history.filter(group_id=prod.pk).order_by("-history_id")[:4]
    }
    assert kinds == {
        ("A", "~", world.alice.pk),
        ("B", "+", world.alice.pk),
        ("C", "-", world.alice.pk),
        ("S", "~", world.alice.pk),
    }
    page = client.get(response["Location"]).content.decode()
    assert "It changed the environment of 2 projects, as previewed." in page

    again = confirm(client, change_url(prod), shown.preview_id)  # used once only
    assert again.status_code == 302 and written() == (variables, history + 4, log + 1, audit)


def test_a_change_by_someone_else_meanwhile_shows_the_new_difference_and_saves_nothing(
    client, world, prod
):
    client.force_login(world.alice)
    shown = preview(client, prod).context["preview"]
    # Someone else removes the group that wins B on web: the conflict will not appear now.
    Variable.objects.get(name="B").delete()
    before = written()

    response = confirm(client, change_url(prod), shown.preview_id)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The organization's data changed since the preview, so nothing was saved." in html
    again = response.context["preview"]
    assert again.changed and again.preview_id != shown.preview_id
    web = dict(again.projects)["web"]
    assert ("B", "added", "from group:prod") in [(r.name, r.kind, r.detail) for r in web]
    assert "conflict appears" not in [r.kind for r in web]
    assert written() == before
    assert rows(prod)["S"].value == OLD_SECRET

    response = confirm(client, change_url(prod), again.preview_id)
    assert response.status_code == 302
    assert rows(prod)["S"].value == NEW_SECRET


def test_any_write_to_the_organization_meanwhile_shows_the_preview_again(client, world, prod):
    client.force_login(world.alice)
    shown = preview(client, prod).context["preview"]
    ProjectVariable.objects.create(project=world.web, name="UNRELATED", value="x")

    response = confirm(client, change_url(prod), shown.preview_id)
    assert response.status_code == 200 and response.context["preview"].changed
    assert rows(prod)["A"].value == "1"


def test_a_save_that_changes_no_environment_is_saved_at_once_and_says_so(client, world, prod):
    client.force_login(world.alice)
    v = rows(prod)
    data = group_data(
        prod,
        [
            {"id": v["A"].pk, "name": "A", "value": "1"},
            {"id": v["C"].pk, "name": "C", "value": "c"},
            {"id": v["S"].pk, "name": "S", "value": "", "is_secret": True},
        ],
        description="only the description",
    )
    response = client.post(change_url(prod), data)
    assert response.status_code == 302
    prod.refresh_from_db()
    assert prod.description == "only the description"
    page = client.get(response["Location"]).content.decode()
    assert "It affects no project&#x27;s environment, so it was saved without a preview." in page


def test_a_form_with_errors_comes_back_without_a_preview(client, world, prod):
    client.force_login(world.alice)
    data = edit(prod) | {"variables-3-name": "1NOT_A_NAME"}
    response = client.post(change_url(prod), data)
    assert response.status_code == 200
    assert "preview" not in response.context
    assert response.context["errors"]
    assert rows(prod)["A"].value == "1"


def test_back_shows_the_form_with_what_was_typed_except_secrets(client, world, prod):
    client.force_login(world.alice)
    shown = preview(client, prod).context["preview"]
    response = client.post(change_url(prod), {PREVIEW_ID: shown.preview_id, BACK: "Back"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "from-prod" in html  # the new public value, as typed
    assert NEW_SECRET not in html and OLD_SECRET not in html
    assert "type them again" in html
    assert not response.context["errors"]
    assert rows(prod)["A"].value == "1"
    # Back used the preview: it cannot be confirmed afterwards.
    confirm(client, change_url(prod), shown.preview_id)
    assert rows(prod)["A"].value == "1"


def test_a_tampered_expired_or_foreign_preview_id_is_refused(client, world, prod):
    dora = User.objects.create_user("dora", password="dora-password", is_staff=True)
    Membership.objects.create(user=dora, organization=world.acme, role="admin")
    client.force_login(world.alice)
    url = change_url(prod)

    response = confirm(client, url, "made-up-id")
    assert response.status_code == 302 and response["Location"] == url
    assert "This preview has expired" in client.get(url).content.decode()

    # Another admin of the organization cannot use alice's preview.
    shown = preview(client, prod).context["preview"]
    other = type(client)()
    other.force_login(dora)
    assert confirm(other, url, shown.preview_id).status_code == 302
    # Nor can it confirm on another object's page.
    other_group = make_group(world.acme, "spare")
    assert confirm(client, change_url(other_group), shown.preview_id).status_code == 302
    assert rows(prod)["A"].value == "1"  # refused, and used up
    assert confirm(client, url, shown.preview_id).status_code == 302
    assert rows(prod)["A"].value == "1"

    # Ten minutes later: the token's own timestamp says it expired.
    shown = preview(client, prod).context["preview"]
    session = client.session
    pending = session[SESSION_KEY]
    plain = crypto.key_ring().decrypt(pending[shown.preview_id].encode())
    pending[shown.preview_id] = (
        crypto.key_ring().encrypt_at_time(plain, int(time.time()) - 11 * 60).decode()
    )
    session[SESSION_KEY] = pending
    session.save()
    assert confirm(client, url, shown.preview_id).status_code == 302
    assert rows(prod)["A"].value == "1"


def test_another_organizations_admin_cannot_confirm(client, world, prod):
    client.force_login(world.alice)
    shown = preview(client, prod).context["preview"]
    client.force_login(world.charlie)
    response = confirm(client, change_url(prod), shown.preview_id)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert rows(prod)["A"].value == "1"


def test_sessions_are_kept_on_the_server_not_in_a_cookie():
    # A pending save is kept in the session: a cookie-based session would hand even its
    # encrypted form to the browser.
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"


def test_neither_the_page_nor_the_stored_session_holds_a_secret_in_clear(client, world, prod):
    client.force_login(world.alice)
    html = preview(client, prod).content.decode()
    assert NEW_SECRET not in html and OLD_SECRET not in html
    assert 'name="_impact_id"' in html and "variables-2-value" not in html
    key = client.cookies["sessionid"].value
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_data FROM django_session WHERE session_key = %s", [key])
        (raw,) = cursor.fetchone()
    decoded = json.dumps(Session.objects.get(session_key=key).get_decoded())
    for text in (raw, decoded):
        assert NEW_SECRET not in text and "from-prod" not in text and OLD_SECRET not in text


def kept_plaintexts() -> set[str]:
    """The plaintexts this process keeps (orgenv.crypto.plaintexts), read off its entries."""
    return {plaintext for _, plaintext, _ in crypto.plaintexts._entries.values()}


def test_a_previewed_value_is_not_kept_in_memory_until_it_is_saved(client, world, prod):
    crypto.plaintexts.clear()
    client.force_login(world.alice)
    response = preview(client, prod)
    # The values as stored were decrypted and kept; what the rolled-back save wrote was not.
    assert OLD_SECRET in kept_plaintexts()
    assert NEW_SECRET not in kept_plaintexts() and "from-prod" not in kept_plaintexts()
    confirm(client, change_url(prod), response.context["preview"].preview_id)
    assert rows(prod)["S"].value == NEW_SECRET


def test_a_project_page_save_previews_its_override(client, world, prod):
    client.force_login(world.alice)
    url = f"/admin/orgenv/project/{world.web.pk}/change/"
    data = {
        "slug": "web",
        "name": "Web",
        "environment": "production",
        "members": [str(world.bob.pk)],
        "granted_groups": [str(g.pk) for g in world.web.granted_groups.all()],
        "variables-TOTAL_FORMS": "1",
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
        "variables-0-project": str(world.web.pk),
        "variables-0-name": "A",
        "variables-0-value": "1",
        "_save": "Save",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "This change affects 1 project." in html
    (project, changes), *_ = response.context["preview"].projects
    assert project == "web"
    assert [(r.name, r.kind, r.detail) for r in changes] == [
        ("A", "source changed", "source group:prod → project")
    ]
    assert not world.web.variables.exists()

    response = confirm(client, url, response.context["preview"].preview_id)
    assert response.status_code == 302
    assert world.web.variables.get().value == "1"
    assert load_layers(world.web).resolution.variables["A"].source == "project"


def test_granting_a_group_on_its_page_previews_the_projects_it_reaches(client, world, prod):
    ops = make_group(world.acme, "ops", variables={"OPS": "on"})
    client.force_login(world.alice)
    response = client.post(change_url(ops), group_data(ops, [], access="all"))
    assert response.status_code == 200
    assert "This change affects 2 projects." in response.content.decode()
    assert load_world(world.acme).groups["ops"].access != "all"


PASTED = "A=pasted\nNEW_TOKEN=tok-Pasted-31f\n"


def test_pasting_into_a_granted_group_previews_then_imports_once(client, world, prod):
    client.force_login(world.alice)
    url = f"/admin/orgenv/variablegroup/{prod.pk}/paste/"
    response = client.post(url, {"step": "import", "text": PASTED, "secret": ["NEW_TOKEN"]})
    assert response.status_code == 200
    html = response.content.decode()
    assert "This change affects 2 projects." in html
    assert "tok-Pasted-31f" not in html and "Back to the review" in html
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.VARIABLES_IMPORTED).exists()
    assert rows(prod)["A"].value == "1"

    response = confirm(client, url, response.context["preview"].preview_id)
    assert response.status_code == 302
    assert rows(prod)["NEW_TOKEN"].value == "tok-Pasted-31f" and rows(prod)["NEW_TOKEN"].is_secret
    assert rows(prod)["A"].value == "pasted"
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.VARIABLES_IMPORTED).count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "Imported 2 variable(s) into prod" in page and "as previewed" in page
