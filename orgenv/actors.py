"""Who is acting: a signed-in user, a runner token, or a command (`system:<command>`).

Requests get their actor from simple-history's middleware (request.user); commands and
services set one explicitly with `acting_as`. History rows and audit events both read it
from here, so they always agree on who did something.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Actor:
    label: str  # username, "token:<prefix>" or "system:<command>"
    user: AbstractBaseUser | None = None


_current: ContextVar[Actor | None] = ContextVar("orgenv_actor", default=None)


@contextmanager
def acting_as(label: str, user: AbstractBaseUser | None = None) -> Iterator[Actor]:
    actor = Actor(label, user)
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def current_actor() -> Actor | None:
    return _current.get()


def history_user(instance: object = None, request: object = None, **kwargs: object) -> Any:
    """simple-history's get_user: the explicit actor's user, else the request's user."""
    actor = _current.get()
    if actor is not None:
        return actor.user
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None


def current_request() -> object | None:
    """The request being served, as simple-history's HistoryRequestMiddleware holds it, so
    that audit events written deep in a service (a token issued from the admin) name the
    same signed-in user as the history rows of the same change."""
    from simple_history.models import HistoricalRecords

    return getattr(HistoricalRecords.context, "request", None)
