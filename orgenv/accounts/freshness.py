"""How recently the signed-in user proved who they are, kept in their session.

A reveal (SPEC "Secret exposure") needs a password entered within REVEAL_REAUTH_SECONDS and,
for a user with a confirmed second-factor device, a code entered as recently. Signing in
counts for both; /accounts/reauth/ renews them. Times are kept server-side, in the session,
so a client cannot claim a fresh proof.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest

PASSWORD_AT = "orgenv_password_at"
SECOND_FACTOR_AT = "orgenv_second_factor_at"


def mark_password(request: HttpRequest) -> None:
    request.session[PASSWORD_AT] = time.time()


def mark_second_factor(request: HttpRequest) -> None:
    request.session[SECOND_FACTOR_AT] = time.time()


def _recent(request: HttpRequest, key: str) -> bool:
    at = request.session.get(key)
    if not isinstance(at, int | float):
        return False
    return 0 <= time.time() - at <= settings.REVEAL_REAUTH_SECONDS


def has_second_factor(user: object) -> bool:
    """Whether the user has enrolled a confirmed device (TOTP; backup codes go with it)."""
    from django_otp import user_has_device

    return bool(getattr(user, "is_authenticated", False)) and user_has_device(user)


def is_fresh(request: HttpRequest) -> bool:
    """A recent password, and a recent second factor when the user has a device."""
    if not _recent(request, PASSWORD_AT):
        return False
    return not has_second_factor(request.user) or _recent(request, SECOND_FACTOR_AT)
