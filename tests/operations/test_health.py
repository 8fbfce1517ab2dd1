"""/healthz and /readyz: JSON for load balancers, no token, no audit event."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from orgenv.models import AuditEvent, Variable
from tests.conftest import make_group


def test_healthz_answers_ok_without_a_token_or_a_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_checks_the_database_the_cache_and_the_keys_and_writes_no_audit_event(client, world):
    make_group(world.acme, "shared", secrets={"API_KEY": "s3cr3t-value"})
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "keys": "ok"},
    }
    assert AuditEvent.objects.count() == 0
    assert "s3cr3t" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_is_503_when_no_key_decrypts_the_stored_values(client, world, settings):
    make_group(world.acme, "shared", secrets={"API_KEY": "s3cr3t-value"})
    assert Variable.objects.exists()
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]  # the data's key is gone
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["keys"] == (
        "failed: no key in FERNET_KEYS decrypts the newest stored value"
    )
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_is_503_when_the_cache_does_not_answer(client, settings):
    # Port 1 on this machine: nothing listens, the connection is refused at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == "failed: the cache does not answer"


def test_healthz_and_readyz_refuse_writes(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
