"""Signing in is a fresh password entry: a reveal right after sign-in needs no second prompt."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from .freshness import mark_password


@receiver(user_logged_in, dispatch_uid="orgenv_fresh_password")
def password_entered(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        mark_password(request)
