"""When the database or the shared cache cannot be reached: 503, not a 500 page.

A runner (or a load balancer) told "503, Retry-After" knows to come back; an HTML 500 tells
it nothing, and without `Cache-Control: no-store` a proxy might even keep it. Only failures
to *reach* a backend count: a connection refused, dropped or timed out (OperationalError,
InterfaceError, redis' ConnectionError and TimeoutError). A bug is still a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DETAIL = "The server is unavailable (its database or cache cannot be reached); try again."


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    else:
        errors += [RedisConnectionError, RedisTimeoutError]
    return tuple(errors)


UNREACHABLE = _unreachable_errors()


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says a backend could not be reached (also when it caused `exc`)."""
    while exc is not None:
        if isinstance(exc, UNREACHABLE):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": DETAIL}, status=503)
    else:
        response = HttpResponse(DETAIL, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class BackendUnavailableMiddleware:
    """Turns "cannot reach the database or cache" into a 503 (JSON under /api/)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_unreachable(exc):
            return None
        # One line, no traceback: the cause is outside orgenv, and a value never is in it.
        logger.error("%s %s: a backend is unreachable (%s)", request.method, request.path, exc)
        return unavailable_response(request)
