"""scanning.scan: one positive and one negative per rule, and what silences a rule."""

from __future__ import annotations

import pytest

from orgenv.hygiene.scanning import ENTROPY_RULES, FORMAT_RULES, KEYWORD_RULE, Hit, scan

# (rule, name, credential-looking value, near miss). Names avoid the keyword list, so each
# row exercises its own rule. The samples are fake; several are the providers' documented
# examples.
CASES = [
    ("AWS Access Key", "K", "AKIAIOSFODNN7EXAMPLE", "AKIADEMO"),
    (
        "Azure Storage Account access key",
        "K",
        "AccountKey="
        + "lJzRc1YdHaAA2KCNJJ1tkYwF/+mKK6Ygw0NGe170Xu592euJv2wYUtBlV8z+"
        + "qnlcNQSnIYVTkLWntUO1F8j8rQ==",
        "AccountKey=short",
    ),
    ("Artifactory Credentials", "K", "AKCp" + "8" + "a" * 69, "AKCp-not-a-token"),
    (
        "Basic Auth Credentials",
        "URL",
        "https://user:hunter2@db.example.com/x",
        "https://db.example.com/x",
    ),
    (
        "Discord Bot Token",
        "K",
        "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
        "MTk4NjIy.abc",
    ),
    ("GitHub Token", "K", "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx", "ghp_short"),
    ("GitLab Token", "K", "glpat-" + "a1B2c3D4e5F6g7H8i9J0", "glpat-short"),
    (
        "JSON Web Token",
        "K",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyJ.not-a-jwt",
    ),
    ("Mailchimp Access Key", "K", "343ea45721923ed956e2b38c31db76aa-us30", "343ea457-us30"),
    (
        "NPM tokens",
        "K",
        "//registry.npmjs.org/:_authToken=743b294a-cd03-11ec-9d64-0242ac120002",
        "//registry.npmjs.org/",
    ),
    (
        "OpenAI Token",
        "K",
        "sk-" + "Ab3dE6gH9jK2mN5pQ8sT" + "T3BlbkFJ" + "uV1wX4yZ7bC0eF3hI6kL",
        "sk-demo",
    ),
    (
        "Private Key",
        "K",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
    ),
    ("PyPI Token", "K", "pypi-AgEIcHlwaS5vcmc" + "A" * 70, "pypi-short"),
    ("SendGrid API Key", "K", "SG." + "a" * 22 + "." + "b" * 43, "SG.short"),
    ("Slack Token", "K", "xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJklmn", "xoxb-1"),
    ("Square OAuth Secret", "K", "sq0csp-" + "a" * 43, "sq0csp-short"),
    (
        "Stripe Access Key",
        "K",
        "sk_live_" + "a1b2c3d4e5f6g7h8i9j0k1l2",
        "pk_live_a1b2c3d4e5f6g7h8i9j0k1l2",
    ),
    ("Telegram Bot Token", "K", "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq", "110201543:short"),
    ("Twilio API Key", "K", "SK" + "0123456789abcdef" * 2, "SK0123"),
    (
        "Base64 High Entropy String",
        "K",
        "kR8vQ2xZ1mN7pL4tY9wE3sJ6hF0cV5bA2dG8uK1oI7qXz",
        "registry.acme.example.com",
    ),
    ("Hex High Entropy String", "K", "3f786850e387550fdab836ed7e6dc881de23001b", "1234567890"),
    ("Secret Keyword", "DB_PASSWORD", "hunter2", "${DB_PASSWORD}"),
]


def test_every_rule_in_use_has_a_case():
    in_use = {p.secret_type for p in (*FORMAT_RULES, *ENTROPY_RULES, KEYWORD_RULE)}
    assert in_use == {rule for rule, *_ in CASES}


@pytest.mark.parametrize(("rule", "name", "positive", "negative"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_flags_its_shape_and_not_a_near_miss(rule, name, positive, negative):
    assert Hit(rule) in scan(name, positive)
    assert Hit(rule) not in scan(name, negative)


def test_ordinary_public_values_are_quiet():
    for name, value in {
        "API_ENDPOINT": "https://api.production.example.com",
        "DB_POOL_SIZE": "10",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SHARED_S3_BUCKET": "s3://acme-shared",
        "RUN_ID": "550e8400-e29b-41d4-a716-446655440000",
        "EMPTY": "",
    }.items():
        assert scan(name, value) == [], name


def test_names_meant_public_silence_heuristic_rules_but_never_format_rules():
    digest = "3f786850e387550fdab836ed7e6dc881de23001b"
    assert scan("BUILD_SHA", digest) == []
    assert scan("STRIPE_PUBLISHABLE_KEY", "pk_live_" + "kR8vQ2xZ1mN7pL4tY9wE3sJ6hF0c") == []
    assert scan("NEXT_PUBLIC_API_PASSWORD", "hunter2") == []
    assert scan("PUBLIC_KEY_ID", "AKIAIOSFODNN7EXAMPLE") == [Hit("AWS Access Key")]


def test_a_hit_carries_the_rule_and_nothing_of_the_value():
    (hit,) = scan("K", "AKIAIOSFODNN7EXAMPLE")
    assert "AKIA" not in repr(hit) and "EXAMPLE" not in repr(hit)
