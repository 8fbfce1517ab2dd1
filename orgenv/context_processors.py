from __future__ import annotations

from django.http import HttpRequest

from . import access


def navigation(request: HttpRequest) -> dict[str, object]:
    """The header's "Manage <organization>" entries: organizations the user administers."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"managed_organizations": []}
    return {"managed_organizations": list(access.administered_organizations(user))}
