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

from weakref import WeakKeyDictionary

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from orgenv.audit.events import client_address
from orgenv.models import ProjectToken

# --- counting: atomic, in the default cache; with Redis in one round trip -----------------

# In Redis, a window's counter is created with its expiry by the same atomic script that
# counts: one round trip. (Django's add-then-incr takes three — SET NX, EXISTS, INCRBY — and
# builds a new client object, with its ~170 response callbacks, for each: about 0.6 ms of a
# runner request's 1 ms, measured in process.)
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
# The runner's two limits at once: nothing is counted for an address over its failures (-1).
_ADMIT = """
local failures = tonumber(redis.call('GET', KEYS[1]) or 0)
if failures >= tonumber(ARGV[1]) then return -1 end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return count
"""


class _Redis:
    """The default cache's Redis client and the counting scripts, made once per cache object
    (Django makes one per thread, and new ones when CACHES changes)."""

    def __init__(self, backend: RedisCache) -> None:
        self.backend = backend
        # Writes and the reads that decide a limit go to the primary, never a replica.
        self.client = backend._cache.get_client(write=True)
        self.count = self.client.register_script(_COUNT)
        self.admit = self.client.register_script(_ADMIT)


_redis_of: WeakKeyDictionary[RedisCache, _Redis] = WeakKeyDictionary()


def _redis() -> _Redis | None:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    redis = _redis_of.get(backend)
    if redis is None:
        redis = _redis_of[backend] = _Redis(backend)
    return redis


def _window(key: str, duration: int, now: float) -> str:
    # The window is part of the key and the key expires with it.
    return f"{key}:{int(now // duration)}"


def _count(key: str, duration: int, now: float) -> int:
    """Add one to the counter of `key` in the current window of `duration` seconds and
    return the new count, atomically, so concurrent requests on several servers never read
    the same count: a Redis script, or in other caches add-then-incr (a locked update in the
    local-memory cache)."""
    window_key = _window(key, duration, now)
    redis = _redis()
    if redis is not None:
        return redis.count(
            keys=[redis.backend.make_and_validate_key(window_key)], args=[duration + 1]
        )
    cache.add(window_key, 0, duration + 1)
    try:
        return cache.incr(window_key)
    except ValueError:  # expired between add and incr: this is the new window's first hit
        cache.add(window_key, 1, duration + 1)
        return 1


def _peek(key: str, duration: int, now: float) -> int:
    """The count of `key` in the current window, without counting."""
    window_key = _window(key, duration, now)
    redis = _redis()
    if redis is None:
        return cache.get(window_key, 0)
    return int(redis.client.get(redis.backend.make_and_validate_key(window_key)) or 0)


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
        failures = _peek(self.key, self.duration, self.now)
        return self.wait() if failures >= self.num_requests else None

    def fail(self, request: HttpRequest | Request) -> float | None:
        """Count one failure; seconds to wait when it is over the limit, else None."""
        if not self._key(request):
            return None
        over = _count(self.key, self.duration, self.now) > self.num_requests
        return self.wait() if over else None


def admit_runner(request: HttpRequest, token_id: int) -> tuple[bool, float | None] | None:
    """A runner's request against both limits it meets before its token is read again, in
    one round trip with Redis: None, having counted nothing, when its address is over its
    failures (the long way answers 429); else (allowed, seconds to wait when not) after
    counting it against the token's rate."""
    failures, tokens = AuthFailureThrottle(), TokenRateThrottle()
    redis = _redis()
    if redis is None or failures.rate is None or tokens.rate is None:
        if failures.blocked(request) is not None:
            return None
        allowed = tokens.allow_key(tokens.key_of_id(token_id))
        return allowed, None if allowed else tokens.wait()
    failures._key(request)
    tokens.key = tokens.key_of_id(token_id)
    tokens.now = tokens.timer()
    make_key = redis.backend.make_and_validate_key
    count = redis.admit(
        keys=[
            make_key(_window(failures.key, failures.duration, failures.now)),
            make_key(_window(tokens.key, tokens.duration, tokens.now)),
        ],
        args=[failures.num_requests, tokens.duration + 1],
    )
    if count < 0:
        return None
    allowed = count <= tokens.num_requests
    return allowed, None if allowed else tokens.wait()
