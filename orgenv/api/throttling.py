"""Rate limits of the API (rates in settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]),
counted in the Django cache, so CACHE_URL=redis://… shares them between app servers.

- "token": requests per project token;
- "member": requests per signed-in user on the member endpoint;
- "reveal": reveals per signed-in user;
- "auth_failure": rejected tokens per client address. Once an address is over it, every
  token from that address gets 429 until the window passes, valid ones included: were a
  valid token still let through, the 429s would tell a guesser which guess was right.
"""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from orgenv.audit.events import client_address
from orgenv.models import ProjectToken


def _count(key: str, duration: int, now: float) -> int:
    """Add one to the counter of `key` in the current window of `duration` seconds and
    return the new count, atomically: cache.incr is Redis INCR (and a locked update in the
    local-memory cache), so concurrent requests on several servers never read the same
    count. The window is part of the key and the key expires with it."""
    window_key = f"{key}:{int(now // duration)}"
    cache.add(window_key, 0, duration + 1)
    try:
        return cache.incr(window_key)
    except ValueError:  # expired between add and incr: this is the new window's first hit
        cache.add(window_key, 1, duration + 1)
        return 1


class _AtomicRate(SimpleRateThrottle):
    """DRF's throttle reads a list of timestamps, appends, and writes it back: two requests
    at once both pass. This one counts with an atomic increment per fixed window."""

    # DRF copies the rates at import time; read them per use so settings changes apply.
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Request, view: object) -> bool:
        if self.rate is None:
            return True
        return self.allow_key(self.get_cache_key(request, view))

    def allow_key(self, key: str | None) -> bool:
        """Count one request under `key` (None: not counted); False when it is one too many."""
        if self.rate is None or key is None:
            return True
        self.key = key
        self.now = self.timer()
        return _count(self.key, self.duration, self.now) <= self.num_requests

    def wait(self) -> float:
        """Seconds until the current window ends."""
        return max(1.0, self.duration - (self.now % self.duration))


class TokenRateThrottle(_AtomicRate):
    scope = "token"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        return self.key_of(request.auth)

    def key_of(self, token: ProjectToken | None) -> str | None:
        return None if token is None else self.key_of_id(token.pk)

    def key_of_id(self, token_id: int) -> str:
        return self.cache_format % {"scope": self.scope, "ident": token_id}


class MemberRateThrottle(_AtomicRate):
    scope = "member"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class RevealRateThrottle(MemberRateThrottle):
    """Reveals per signed-in user: a slow, deliberate path, never a way to read in bulk."""

    scope = "reveal"


class AuthFailureThrottle(_AtomicRate):
    """Counts failures only: `blocked` is asked before a token is checked, `fail` after a
    token was rejected — and says, from its own atomic count, whether this failure was one
    too many, so that a burst of guesses at once cannot all be answered 401."""

    scope = "auth_failure"

    def _key(self, request: HttpRequest | Request) -> bool:
        if self.rate is None:
            return False
        address = client_address(request) or "unknown"
        self.key = self.cache_format % {"scope": self.scope, "ident": address}
        self.now = self.timer()
        return True

    def blocked(self, request: HttpRequest | Request) -> float | None:
        """Seconds to wait when this address has failed too often, else None."""
        if not self._key(request):
            return None
        failures = cache.get(f"{self.key}:{int(self.now // self.duration)}", 0)
        return self.wait() if failures >= self.num_requests else None

    def fail(self, request: HttpRequest | Request) -> float | None:
        """Count one failure; seconds to wait when it is over the limit, else None."""
        if not self._key(request):
            return None
        over = _count(self.key, self.duration, self.now) > self.num_requests
        return self.wait() if over else None
