"""The shared rules of import_env and Paste .env: which names and values look secret."""

from __future__ import annotations

import pytest

from orgenv.configuration.importing import proposed_secret


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("OPENAI_API_KEY", "x", "the name ends with _KEY"),
        ("GITHUB_TOKEN", "x", "the name ends with _TOKEN"),
        ("DB_PASSWORD", "x", "the name ends with _PASSWORD"),
        ("STRIPE_SECRET", "x", "the name ends with _SECRET"),
        ("SECRET_KEY_BASE", "x", "the name contains SECRET"),
        ("PASSWORD", "x", "the name is PASSWORD"),
        ("AWS_ACCESS_KEY_ID", "AKIA", "the name is an access key"),
        ("DATABASE_URL", "postgres://u:p@h/db", "the value is a URL with a password"),
        ("TLS", "-----BEGIN RSA PRIVATE KEY-----\n…", "the value is a private key"),
        ("DATABASE_URL", "postgres://h/db", ""),
        ("LOG_LEVEL", "info", ""),
        ("KEYBOARD_LAYOUT", "us", ""),
        ("TOKENIZER_MODEL", "bert", ""),
    ],
)
def test_secret_looking_names_and_values_are_proposed_with_the_reason(name, value, reason):
    assert proposed_secret(name, value) == reason
