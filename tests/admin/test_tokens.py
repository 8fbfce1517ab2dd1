"""Project tokens in the admin: issued once, listed by prefix, revoked by an action."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from orgenv.models import ProjectToken
from orgenv.tokens import TokenRejected, token_authenticate, token_issue

pytestmark = pytest.mark.django_db

TOKENS = "/admin/orgenv/projecttoken/"
TOKEN_RE = re.compile(r"oev_[A-Za-z0-9_.-]{32,}")


def issue_form(project, name: str, **fields: object) -> dict[str, object]:
    return {"project": str(project.pk), "name": name, "_save": "Save", **fields}


def test_a_new_token_is_shown_once_then_only_its_prefix(client, world):
    client.force_login(world.alice)
    response = client.post(f"{TOKENS}add/", issue_form(world.web, "ci", days="30"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    plaintext = TOKEN_RE.search(response.content.decode()).group(0)
    token = ProjectToken.objects.get(project=world.web, name="ci")
    assert plaintext.startswith(token.prefix + ".")
    assert token.expires_at is not None
    assert token.created_by == world.alice
    assert token_authenticate(plaintext) == token

    listing = client.get(TOKENS).content.decode()
    assert token.prefix in listing
    assert plaintext not in listing
    page = client.get(f"{TOKENS}{token.pk}/change/").content.decode()
    assert token.prefix in page
    assert plaintext not in page


def test_the_revoke_action_asks_then_revokes_the_selected_tokens(client, world):
    token, plaintext = token_issue(project=world.web, name="ci")
    client.force_login(world.alice)
    selected = {"action": "revoke", "_selected_action": [str(token.pk)], "index": "0"}
    response = client.post(TOKENS, selected)
    assert response.status_code == 200
    assert "Yes, revoke" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # asking revokes nothing
    token_authenticate(plaintext)
    response = client.post(TOKENS, {**selected, "post": "yes"})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    with pytest.raises(TokenRejected) as rejected:
        token_authenticate(plaintext)
    assert rejected.value.reason == TokenRejected.REVOKED


def test_charlie_cannot_list_revoke_or_issue_acme_tokens(client, world):
    token, _ = token_issue(project=world.web, name="ci")
    client.force_login(world.charlie)
    assert token.prefix not in client.get(TOKENS).content.decode()
    client.post(TOKENS, {"action": "revoke", "_selected_action": [str(token.pk)], "index": "0"})
    token.refresh_from_db()
    assert token.revoked_at is None
    response = client.post(f"{TOKENS}add/", issue_form(world.web, "planted"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not ProjectToken.objects.filter(name="planted").exists()


def test_days_and_an_expiry_date_together_are_refused(client, world):
    client.force_login(world.alice)
    data = issue_form(world.web, "ci", days="3", expires_at_0="2099-01-01", expires_at_1="00:00:00")
    response = client.post(f"{TOKENS}add/", data)
    assert response.status_code == 200
    assert "either a number of days or an expiry date" in response.content.decode()
    assert not ProjectToken.objects.exists()


def test_a_duplicate_token_name_is_refused_with_a_form_error(client, world):
    token_issue(project=world.web, name="ci")
    client.force_login(world.alice)
    response = client.post(f"{TOKENS}add/", issue_form(world.web, "ci"))
    assert response.status_code == 200
    assert ProjectToken.objects.count() == 1
    assert "already exists" in response.content.decode()


def test_the_status_filter_separates_active_expired_and_revoked_tokens(client, world):
    from orgenv.tokens import token_revoke

    token_issue(project=world.web, name="live-one")
    expired, _ = token_issue(project=world.web, name="old-one", days=1)
    ProjectToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = token_issue(project=world.web, name="gone-one")
    token_revoke(token=revoked)
    client.force_login(world.alice)
    for status, name in [("active", "live-one"), ("expired", "old-one"), ("revoked", "gone-one")]:
        html = client.get(f"{TOKENS}?status={status}").content.decode()
        shown = {n for n in ("live-one", "old-one", "gone-one") if f">{n}<" in html}
        assert shown == {name}, status


def change_form(token, **fields: object) -> dict[str, object]:
    """The change form as the admin posts it: expires_at is a date and a time field."""
    form = {"name": token.name, "expires_at_0": "", "expires_at_1": "", "_save": "Save"}
    if token.expires_at is not None:
        form["expires_at_0"] = f"{token.expires_at:%Y-%m-%d}"
        form["expires_at_1"] = f"{token.expires_at:%H:%M:%S}"
    form.update(fields)
    return form


def test_an_expired_token_cannot_be_brought_back_to_life(client, world):
    token, plaintext = token_issue(project=world.web, name="ci", days=1)
    ProjectToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    token.refresh_from_db()
    expired_at = token.expires_at
    client.force_login(world.alice)
    later = timezone.now() + timedelta(days=30)
    for fields in (
        {"expires_at_0": f"{later:%Y-%m-%d}", "expires_at_1": "12:00:00"},  # a later date
        {"expires_at_0": "", "expires_at_1": ""},  # no expiry at all
    ):
        response = client.post(f"{TOKENS}{token.pk}/change/", change_form(token, **fields))
        assert response.status_code == 200
        assert "can only be brought forward" in response.content.decode()
        assert "for a longer life, issue a new token." in response.content.decode()
        token.refresh_from_db()
        assert token.expires_at == expired_at
    with pytest.raises(TokenRejected) as rejected:
        token_authenticate(plaintext)
    assert rejected.value.reason == TokenRejected.EXPIRED


def test_an_expiry_can_be_brought_forward_and_a_token_renamed(client, world):
    token, _ = token_issue(project=world.web, name="ci")  # does not expire
    client.force_login(world.alice)
    sooner = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    response = client.post(
        f"{TOKENS}{token.pk}/change/",
        change_form(
            token,
            name="ci-renamed",
            expires_at_0=f"{sooner:%Y-%m-%d}",
            expires_at_1=f"{sooner:%H:%M:%S}",
        ),
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.name, token.expires_at) == ("ci-renamed", sooner)
    even_sooner = sooner - timedelta(days=1)
    response = client.post(
        f"{TOKENS}{token.pk}/change/",
        change_form(
            token, expires_at_0=f"{even_sooner:%Y-%m-%d}", expires_at_1=f"{even_sooner:%H:%M:%S}"
        ),
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.expires_at == even_sooner
