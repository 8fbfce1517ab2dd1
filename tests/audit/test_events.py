"""Audit events: sign-ins and lockout, append-only records, the AuditEvent admin, and who
is named as the actor of a change (requests and commands)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from orgenv.audit import events as audit
from orgenv.models import AuditEvent, ProjectToken, Variable
from tests.conftest import make_group

Kind = AuditEvent.Kind
AGENT = "Mozilla/5.0 (audit test)"


def _sign_in(client, username, password):
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        HTTP_USER_AGENT=AGENT,
        REMOTE_ADDR="203.0.113.9",
    )


def test_a_sign_in_a_failure_and_a_sign_out_are_recorded_with_address_and_agent(client, world):
    assert _sign_in(client, "bob", "wrong-password").status_code == 200
    assert _sign_in(client, "bob", "bob-password").status_code == 302
    client.post("/accounts/logout/", HTTP_USER_AGENT=AGENT, REMOTE_ADDR="203.0.113.9")
    events = list(AuditEvent.objects.order_by("at", "id"))
    assert [(e.kind, e.actor) for e in events] == [
        (Kind.LOGIN_FAILED, "bob"),
        (Kind.LOGIN, "bob"),
        (Kind.LOGOUT, "bob"),
    ]
    for event in events:
        assert (event.address, event.user_agent, event.user) == ("203.0.113.9", AGENT, world.bob)
        assert "wrong-password" not in str(event.detail) + str(event.variables)


def test_the_sixth_sign_in_is_locked_out_even_with_the_right_password(client, world, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(5):
        _sign_in(client, "bob", "wrong-password")
    response = _sign_in(client, "bob", "bob-password")
    assert response.status_code != 302
    assert "_auth_user_id" not in client.session
    assert client.get("/orgs/acme/audit/").status_code == 302  # still signed out
    failures = AuditEvent.objects.filter(kind=Kind.LOGIN_FAILED, actor="bob").order_by("at", "id")
    assert failures.count() == 6
    assert failures.last().detail == {"locked_out": True}
    assert not AuditEvent.objects.filter(kind=Kind.LOGIN).exists()


def test_audit_events_cannot_be_changed_or_deleted(world):
    event = audit.record(Kind.TOKEN_ISSUED, project=world.web, actor="alice")
    event.actor = "mallory"
    with pytest.raises(ValidationError, match="append-only"):
        event.save()
    with pytest.raises(ValidationError, match="append-only"):
        event.delete()
    with pytest.raises(ValidationError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(actor="mallory")
    with pytest.raises(ValidationError, match="append-only"):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().actor == "alice"


def test_record_fills_slugs_and_refuses_a_value(world):
    event = audit.record(Kind.TOKEN_REVOKED, project=world.web, actor="alice")
    assert (event.organization, event.organization_slug, event.project_slug) == (
        world.acme,
        "acme",
        "web",
    )
    # The recorder's signature has no parameter a value could travel in.
    for smuggled in ("value", "values", "plaintext"):
        with pytest.raises(TypeError, match=f"unexpected keyword argument '{smuggled}'"):
            audit.record(Kind.RESOLUTION, project=world.web, **{smuggled: "s3cret"})
    assert AuditEvent.objects.count() == 1


def test_prune_removes_only_events_older_than_the_cutoff(world):
    audit.record(Kind.RESOLUTION, project=world.web, actor="a")
    assert AuditEvent.objects.prune(timezone.now() - timedelta(days=1)) == 0
    assert AuditEvent.objects.prune(timezone.now() + timedelta(seconds=1)) == 1
    assert not AuditEvent.objects.exists()


def test_the_audit_admin_is_view_only_and_scoped(client, world):
    mine = audit.record(Kind.RESOLUTION, project=world.web, actor="token:acme")
    theirs = audit.record(Kind.RESOLUTION, project=world.globex_app, actor="token:globex")
    client.force_login(world.alice)
    listing = client.get("/admin/orgenv/auditevent/").content.decode()
    assert "token:acme" in listing and "token:globex" not in listing
    assert client.get(f"/admin/orgenv/auditevent/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/orgenv/auditevent/{theirs.pk}/change/").status_code in (302, 404)
    assert client.get("/admin/orgenv/auditevent/add/").status_code == 403
    response = client.post(f"/admin/orgenv/auditevent/{mine.pk}/change/", {"actor": "mallory"})
    assert response.status_code == 403
    assert client.post(f"/admin/orgenv/auditevent/{mine.pk}/delete/").status_code == 403
    assert AuditEvent.objects.get(pk=mine.pk).actor == "token:acme"
    client.force_login(world.bob)
    assert client.get("/admin/orgenv/auditevent/").status_code in (302, 403)


def test_an_admin_change_is_attributed_to_the_signed_in_user(client, world):
    group = make_group(world.acme, "g", secrets={"S": "one"})
    variable = Variable.objects.get(group=group)
    client.force_login(world.alice)
    response = client.post(
        f"/admin/orgenv/variable/{variable.pk}/change/",
        {"group": group.pk, "name": "S", "value": "two", "is_secret": "on"},
    )
    assert response.status_code == 302
    latest = variable.history.latest()
    assert (latest.history_actor, latest.history_user) == ("alice", world.alice)


def test_a_command_is_attributed_to_actor_or_to_itself(world):
    call_command("issue_token", "acme/web", "--name", "ci", stdout=StringIO())
    call_command("issue_token", "acme/web", "--name", "cd", "--actor", "alice", stdout=StringIO())
    by_name = {t.name: t.history.earliest() for t in ProjectToken.objects.filter(project=world.web)}
    assert by_name["ci"].history_actor == "system:issue_token"
    assert by_name["ci"].history_user is None
    assert (by_name["cd"].history_actor, by_name["cd"].history_user) == ("alice", world.alice)
    issued = AuditEvent.objects.filter(kind=Kind.TOKEN_ISSUED).order_by("at")
    assert [e.actor for e in issued] == ["system:issue_token", "alice"]


def test_behind_a_trusted_proxy_one_address_never_locks_out_another(client, world, settings):
    """Axes counts failures by the client's address, the one audit and throttles use."""
    settings.ORGENV_TRUSTED_PROXIES = 1

    def sign_in(password: str, address: str):
        return client.post(
            "/accounts/login/",
            {"username": "bob", "password": password},
            REMOTE_ADDR="10.0.0.1",  # the proxy
            HTTP_X_FORWARDED_FOR=address,
        )

    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("wrong-password", "198.51.100.7")
    assert sign_in("bob-password", "198.51.100.7").status_code != 302  # that client: locked
    assert sign_in("bob-password", "203.0.113.20").status_code == 302  # another: signed in
    failures = AuditEvent.objects.filter(kind=Kind.LOGIN_FAILED).values_list("address", flat=True)
    assert set(failures) == {"198.51.100.7"}
    login = AuditEvent.objects.get(kind=Kind.LOGIN)
    assert login.address == "203.0.113.20"
