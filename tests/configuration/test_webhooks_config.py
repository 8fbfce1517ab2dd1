"""Webhooks in apply_config and export_config: the signing secret comes from the environment
(secret_from_env) or is generated and printed once, and is never in the file."""

from __future__ import annotations

import textwrap
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orgenv.models import WebhookEndpoint
from orgenv.notifications.models import new_signing_secret

pytestmark = pytest.mark.django_db

FILE = """
organizations:
  - slug: acme
    name: Acme ML
    webhooks:
      - name: deploy
        url: https://hooks.example.com/orgenv
        events: [group.changed, token.revoked]
        {extra}
"""


def apply(tmp_path, text, *args):
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    out = StringIO()
    call_command("apply_config", str(path), *args, stdout=out)
    return out.getvalue()


def test_a_new_webhook_without_secret_from_env_prints_its_generated_secret_once(world, tmp_path):
    out = apply(tmp_path, FILE.format(extra=""))
    endpoint = WebhookEndpoint.objects.get()
    assert f"acme/deploy: {endpoint.secret}" in out
    assert "webhooks 1 created" in out
    assert endpoint.events == ["group.changed", "token.revoked"] and endpoint.enabled
    again = apply(tmp_path, FILE.format(extra=""))
    assert endpoint.secret not in again and "webhooks" not in again.split("Effect")[0]
    endpoint.refresh_from_db()
    assert endpoint.secret in out, "kept"


def test_secret_from_env_sets_and_later_rotates_the_secret(world, tmp_path, monkeypatch):
    first, second = new_signing_secret(), new_signing_secret()
    monkeypatch.setenv("DEPLOY_HOOK_SECRET", first)
    out = apply(tmp_path, FILE.format(extra="secret_from_env: DEPLOY_HOOK_SECRET"))
    assert first not in out
    assert WebhookEndpoint.objects.get().secret == first
    monkeypatch.setenv("DEPLOY_HOOK_SECRET", second)
    out = apply(tmp_path, FILE.format(extra="secret_from_env: DEPLOY_HOOK_SECRET"))
    assert "webhooks 1 updated" in out and second not in out
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secrets_in_use() == [second, first], "the old one signs for 24 hours"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("secret_from_env: MISSING_SECRET", "the environment variable MISSING_SECRET is not set."),
        ("secret_from_env: SECRET_KEY", "SECRET_KEY is a setting of the orgenv server itself"),
        ("secret_from_env: BAD_SECRET", "BAD_SECRET: A signing secret starts with whsec_"),
        ("format: teams", "'teams' is not a format; use standard or slack."),
        ("secret: whsec_abc", "unknown key 'secret'"),
    ],
)
def test_bad_webhook_entries_name_the_line_and_change_nothing(
    world, tmp_path, monkeypatch, extra, message
):
    monkeypatch.setenv("BAD_SECRET", "not-a-secret")
    with pytest.raises(CommandError) as error:
        apply(tmp_path, FILE.format(extra=extra))
    assert "c.yaml:" in str(error.value) and message in str(error.value)
    assert "not-a-secret" not in str(error.value)
    assert WebhookEndpoint.objects.count() == 0


def test_an_unknown_event_and_an_http_url_are_refused(world, tmp_path):
    text = FILE.format(extra="").replace("token.revoked", "token.leaked")
    with pytest.raises(CommandError, match="'token.leaked' is not an event"):
        apply(tmp_path, text)
    text = FILE.format(extra="").replace("https://", "http://")
    with pytest.raises(CommandError, match="Use https"):
        apply(tmp_path, text)


def test_export_writes_webhooks_without_secrets_and_reads_back_unchanged(world, tmp_path):
    apply(tmp_path, FILE.format(extra="format: slack"))
    secret = WebhookEndpoint.objects.get().secret
    out = StringIO()
    call_command("export_config", "acme", stdout=out)
    exported = out.getvalue()
    assert secret not in exported and "whsec_" not in exported
    assert '        url: "https://hooks.example.com/orgenv"' in exported
    assert '        events: ["group.changed", "token.revoked"]' in exported
    assert '        format: "slack"' in exported
    (tmp_path / "export.yaml").write_text(exported)
    again = StringIO()
    call_command("apply_config", str(tmp_path / "export.yaml"), stdout=again)
    assert "acme: nothing to change." in again.getvalue()
    assert WebhookEndpoint.objects.get().secret == secret


def test_prune_removes_the_webhooks_the_file_no_longer_lists(world, tmp_path):
    apply(tmp_path, FILE.format(extra=""))
    empty = "organizations:\n  - slug: acme\n    webhooks: []\n"
    apply(tmp_path, empty)
    assert WebhookEndpoint.objects.count() == 1, "kept without --prune"
    out = apply(tmp_path, empty, "--prune")
    assert "webhooks 1 deleted" in out and WebhookEndpoint.objects.count() == 0
