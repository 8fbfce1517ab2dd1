"""Project tokens: the services of orgenv.tokens and the issue_token / revoke_token commands."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from orgenv.models import AuditEvent, ProjectToken
from orgenv.tokens import (
    TOKEN_RE,
    TokenRejected,
    token_authenticate,
    token_issue,
    token_revoke,
)


def rejection(raw: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        token_authenticate(raw)
    return caught.value


def test_an_issued_token_has_the_spec_format_and_only_its_digest_is_stored(world):
    token, raw = token_issue(project=world.web, name="ci")
    assert raw.startswith("oev_") and TOKEN_RE.fullmatch(raw)
    # docs/api.md: oev_ followed by at least 32 characters of A-Za-z0-9_.-
    assert len(raw) - 4 >= 32 and set(raw[4:]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
    )
    prefix, secret = raw.split(".", 1)
    assert token.prefix == prefix
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orgenv_projecttoken")
        rows = cursor.fetchall()
        cursor.execute("SELECT * FROM orgenv_historicalprojecttoken")
        rows += cursor.fetchall()
    assert not any(secret in str(cell) for row in rows for cell in row)


def test_a_token_authenticates_to_its_project(world):
    token, raw = token_issue(project=world.web, name="ci")
    found = token_authenticate(raw)
    assert found.pk == token.pk and found.project == world.web


def test_it_rejects_a_revoked_token(world):
    token, raw = token_issue(project=world.web, name="ci")
    token_revoke(token=token)
    refused = rejection(raw)
    assert (refused.reason, refused.prefix, refused.token.pk) == ("revoked", token.prefix, token.pk)


def test_it_rejects_an_expired_token(world):
    token, raw = token_issue(project=world.web, name="ci", days=1)
    ProjectToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert rejection(raw).reason == "expired"


def test_a_wrong_secret_with_a_known_prefix_is_as_unknown_as_an_unknown_prefix(world):
    token, raw = token_issue(project=world.web, name="ci")
    wrong = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert rejection(wrong).reason == "unknown"
    assert rejection("oev_AAAAAAAAAAAA." + "x" * 43).reason == "unknown"


@pytest.mark.parametrize(
    "raw", ["", "oev_", "Bearer", "abc.def", "oev_short.secret", "oev_" + "é" * 50]
)
def test_it_rejects_a_malformed_token_before_reading_the_database(
    world, raw, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert rejection(raw).reason == "malformed"


def test_the_status_rule_agrees_for_one_row_and_in_sql(world):
    now = timezone.now()
    cases = {  # name: (expires_at, revoked_at, status)
        "forever": (None, None, "active"),
        "later": (now + timedelta(days=1), None, "active"),
        "past": (now - timedelta(seconds=1), None, "expired"),
        "revoked": (None, now, "revoked"),
        "revoked-and-past": (now - timedelta(days=1), now, "revoked"),
    }
    for name, (expires_at, revoked_at, _) in cases.items():
        ProjectToken.objects.create(
            project=world.web,
            name=name,
            prefix=f"oev_{name[:12]:x<12}",
            digest="0" * 64,
            expires_at=expires_at,
            revoked_at=revoked_at,
        )
    tokens = ProjectToken.objects.all()
    assert {t.name: t.status for t in tokens} == {n: c[2] for n, c in cases.items()}
    for status in ProjectToken.Status.values:
        expected = {n for n, c in cases.items() if c[2] == status}
        assert set(tokens.with_status(status).values_list("name", flat=True)) == expected
    assert set(tokens.active().values_list("name", flat=True)) == {"forever", "later"}


@pytest.mark.parametrize(
    ("days", "in_days", "field", "message"),
    [
        (3, 4, "days", "Give either a number of days or an expiry date, not both."),
        (0, None, "days", "days must be a positive number, not 0."),
        (None, -1, "expires_at", "The expiry date must be in the future."),
    ],
)
def test_a_bad_expiry_is_refused_naming_the_field(world, days, in_days, field, message):
    expires_at = None if in_days is None else timezone.now() + timedelta(days=in_days)
    with pytest.raises(ValidationError) as caught:
        token_issue(project=world.web, name="ci", days=days, expires_at=expires_at)
    assert caught.value.message_dict == {field: [message]}
    assert not ProjectToken.objects.exists()


def test_a_token_name_is_unique_per_project_with_a_clear_message(world):
    token_issue(project=world.web, name="ci")
    with pytest.raises(ValidationError) as caught:
        token_issue(project=world.web, name="ci")
    assert caught.value.message_dict["name"] == [
        "Project acme/web already has a token named 'ci': choose another name."
    ]
    # The same name in another project is fine.
    token_issue(project=world.globex_app, name="ci")
    assert ProjectToken.objects.filter(name="ci").count() == 2


def test_days_must_be_positive_and_nothing_is_saved_otherwise(world):
    with pytest.raises(ValidationError) as caught:
        token_issue(project=world.web, name="ci", days=0)
    assert "days must be a positive number" in str(caught.value)
    assert not ProjectToken.objects.exists() and not AuditEvent.objects.exists()


def test_issuing_and_revoking_are_audited_without_the_secret(world):
    token, raw = token_issue(project=world.web, name="ci", created_by=world.alice)
    token_revoke(token=token)
    token_revoke(token=token)  # a second revocation changes nothing
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.kind for e in events] == ["token_issued", "token_revoked"]
    assert all(e.token_prefix == token.prefix and e.project == world.web for e in events)
    secret = raw.split(".", 1)[1]
    for event in AuditEvent.objects.values():
        assert secret not in str(event)


def test_last_used_is_written_at_most_once_a_minute_without_a_history_row(world):
    token, raw = token_issue(project=world.web, name="ci")
    history_rows = token.history.count()
    first = token_authenticate(raw).last_used_at
    assert first is not None
    token_authenticate(raw)
    token.refresh_from_db()
    assert token.last_used_at == first
    ProjectToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    assert token_authenticate(raw).last_used_at > first - timedelta(minutes=2)
    assert token.history.count() == history_rows


def test_issue_token_prints_only_the_token_on_stdout(world):
    out, err = StringIO(), StringIO()
    call_command("issue_token", "acme/web", "--name", "ci", "--days", "7", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert TOKEN_RE.fullmatch(raw)
    assert "shown only now" in err.getvalue() and raw not in err.getvalue()
    token = token_authenticate(raw)
    assert token.name == "ci" and token.expires_at > timezone.now() + timedelta(days=6)


def test_issue_token_attributes_the_token_to_the_actor(world):
    call_command("issue_token", "acme/web", "--name", "ci", "--actor", "alice", stdout=StringIO())
    assert ProjectToken.objects.get().created_by == world.alice
    assert AuditEvent.objects.get().actor == "alice"


def test_issue_token_refuses_a_duplicate_name_and_an_unknown_project(world):
    call_command("issue_token", "acme/web", "--name", "ci", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="already has a token named 'ci'"):
        call_command("issue_token", "acme/web", "--name", "ci", stdout=StringIO())
    with pytest.raises(CommandError, match="no project 'nope' in organization 'acme'"):
        call_command("issue_token", "acme/nope", "--name", "ci", stdout=StringIO())
    with pytest.raises(CommandError, match="is not ORG/PROJECT"):
        call_command("issue_token", "web", "--name", "ci", stdout=StringIO())


def test_revoke_token_makes_the_token_fail(world):
    token, raw = token_issue(project=world.web, name="ci")
    out = StringIO()
    call_command("revoke_token", "acme/web", "--name", "ci", stdout=out)
    assert "revoked" in out.getvalue()
    assert rejection(raw).reason == "revoked"
    event = AuditEvent.objects.filter(kind="token_revoked").get()
    assert event.actor == "system:revoke_token"


def test_revoke_token_names_the_existing_tokens_when_the_name_is_wrong(world):
    token_issue(project=world.web, name="ci")
    with pytest.raises(CommandError, match=r"no token named 'cd' \(its tokens: ci\)"):
        call_command("revoke_token", "acme/web", "--name", "cd", stdout=StringIO())


def test_token_update_refuses_a_longer_life_whatever_the_caller(world):
    from orgenv.tokens import token_update

    token, _ = token_issue(project=world.web, name="ci", days=10)
    original = token.expires_at
    with pytest.raises(ValidationError, match="can only be brought forward"):
        token_update(token=token, name="ci", expires_at=original + timedelta(seconds=1))
    with pytest.raises(ValidationError, match="can only be brought forward"):
        token_update(token=token, name="ci", expires_at=None)
    token.refresh_from_db()
    assert token.expires_at == original
    earlier = timezone.now() + timedelta(days=1)
    assert token_update(token=token, name="ci", expires_at=earlier).expires_at == earlier
