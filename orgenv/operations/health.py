"""`/healthz` and `/readyz`: small JSON answers for load balancers and orchestrators.

Neither needs a token nor writes an audit event: a probe every few seconds must cost nothing
and must not bury the audit log. Neither says anything a stranger could use: check names and
`ok`/`failed`, with a short reason that never holds a value, a key or an address.
"""

from __future__ import annotations

import secrets

from cryptography.fernet import InvalidToken
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from orgenv import crypto
from orgenv.models import Variable


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers requests; nothing else is checked."""
    return _answer(200, {"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and the cache answer and the key ring decrypts a probe."""
    checks = {"database": _database(), "cache": _cache(), "keys": _keys()}
    ready = all(result == "ok" for result in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return _answer(200 if ready else 503, body)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 (any failure means not ready; the reason is logged by no one)
        return "failed: the database does not answer"
    return "ok"


def _cache() -> str:
    # A key of its own per probe: concurrent probes and several servers never collide.
    key = f"orgenv:readyz:{secrets.token_hex(8)}"
    try:
        cache.set(key, "1", timeout=10)
        answered = cache.get(key)
        cache.delete(key)
    except Exception:  # noqa: BLE001
        return "failed: the cache does not answer"
    return "ok" if answered == "1" else "failed: the cache does not keep what it is given"


def _keys() -> str:
    """The key ring loads, encrypts and decrypts, and decrypts the newest stored value: a
    FERNET_KEYS that lost the key the data was written with is not ready."""
    try:
        ring = crypto.key_ring()
        probe = secrets.token_hex(8)
        if ring.decrypt(ring.encrypt(probe.encode())).decode() != probe:
            return "failed: the key ring does not decrypt what it encrypts"
        newest = _newest_stored_value()
        if newest is not None:
            ring.decrypt(newest.encode("ascii"))
    except crypto.DecryptionError:
        return "failed: FERNET_KEYS holds a key that is not a Fernet key"
    except (InvalidToken, ValueError):
        return "failed: no key in FERNET_KEYS decrypts the newest stored value"
    except Exception:  # noqa: BLE001
        return "failed: the key ring cannot be checked"
    return "ok"


def _newest_stored_value() -> str | None:
    # Raw ciphertext, read past the field's decryption (and its cache): the probe is the
    # key ring itself.
    table = connection.ops.quote_name(Variable._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {table} ORDER BY id DESC LIMIT 1")  # noqa: S608
        row = cursor.fetchone()
    return row[0] if row else None


def _answer(status: int, body: dict) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response
