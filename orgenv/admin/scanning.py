"""The admin's warning after a save: a public value that looks like a credential is named,
with the rule it matched (never the value), on the page the admin lands on next."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from orgenv.hygiene.public_values import findings_of


def warn_about_public_values(request: HttpRequest, definitions: Any) -> None:
    for finding in findings_of(definitions):
        messages.warning(
            request,
            f"{finding.name} ({finding.owner}) is public but looks like a credential "
            f"({finding.rules}). Mark it secret, or tick “not a secret” if it is meant to be "
            "public.",
        )


class WarnsAboutPublicValues:
    """For the admins of groups and projects (their inline variables) and of variables."""

    def definitions_to_scan(self, obj: Any) -> Any:
        if hasattr(obj, "variables"):
            return obj.variables.all()
        return [obj]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        warn_about_public_values(request, self.definitions_to_scan(form.instance))
