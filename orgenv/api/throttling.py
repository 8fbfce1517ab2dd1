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
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from orgenv.audit.events import client_address


class _CurrentRates(SimpleRateThrottle):
    # DRF copies the rates at import time; read them per use so settings changes apply.
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class TokenRateThrottle(_CurrentRates):
    scope = "token"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        token = request.auth
        if token is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": token.pk}


class MemberRateThrottle(_CurrentRates):
    scope = "member"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class RevealRateThrottle(MemberRateThrottle):
    """Reveals per signed-in user: a slow, deliberate path, never a way to read in bulk."""

    scope = "reveal"


class AuthFailureThrottle(_CurrentRates):
    """Counts failures only: `blocked` is asked before a token is checked, `fail` after a
    token was rejected."""

    scope = "auth_failure"

    def _load(self, request: Request) -> bool:
        if self.rate is None:
            return False
        address = client_address(request) or "unknown"
        self.key = self.cache_format % {"scope": self.scope, "ident": address}
        self.now = self.timer()
        self.history = [t for t in cache.get(self.key, []) if t > self.now - self.duration]
        return True

    def blocked(self, request: Request) -> float | None:
        """Seconds to wait when this address has failed too often, else None."""
        if not self._load(request) or len(self.history) < self.num_requests:
            return None
        if not self.history:  # a rate of 0 refuses every token
            return float(self.duration)
        return max(1.0, self.duration - (self.now - self.history[-1]))

    def fail(self, request: Request) -> None:
        if self._load(request):
            self.history.insert(0, self.now)
            cache.set(self.key, self.history, self.duration)
