"""Deleting with an impact preview: what a deletion does to every project's environment is
shown on its confirmation page, above Django's list of the objects that go.

The deletion is measured as a save's preview is (orgenv.admin.previewing.ImpactRun): done in
a transaction, the organization loaded before and after, and rolled back. The page carries
the organization's generation it was shown at; confirming deletes only if, under a lock on
the organization's row, the generation is still that one, and otherwise shows the page again
with the difference as it is now. "Delete selected" works the same way, for the objects of
one organization at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict

from orgenv import access
from orgenv.resolution.impact import Impact

from .previewing import ImpactRow, ImpactRun, PreviewNeeded, impact_rows, locked_generation

# Posted by a deletion's confirmation page: the organization's generation it was shown at.
DELETION_GENERATION = "_impact_generation"
ONE_ORGANIZATION = (
    "Select objects of one organization at a time: a deletion shows its impact on that "
    "organization's projects before it is confirmed. Nothing was deleted."
)


@dataclass(frozen=True)
class DeletionPreview:
    """What the deletion page shows above Django's list of the objects it deletes."""

    impact: Impact
    generation: int
    changed: bool  # shown again: the organization changed since the page was shown

    @property
    def projects(self) -> list[tuple[str, list[ImpactRow]]]:
        return impact_rows(self.impact)

    def headline(self) -> str:
        if not self.impact:
            return "Deleting this affects no project's environment."
        n = self.impact.count
        return f"Deleting this affects {n} project{'' if n == 1 else 's'}."


def deletion_preview(
    organization_id: int, delete: Callable[[], object], *, changed: bool = False
) -> DeletionPreview:
    """The difference `delete` makes to the organization's projects, measured as a save's
    preview is (ImpactRun): done in a transaction, the organization loaded before and
    after, and rolled back — nothing of it survives."""
    run = ImpactRun()
    try:
        with transaction.atomic():
            run.begin(organization_id)
            delete()
            run.end()  # returns when nothing changes, raises PreviewNeeded otherwise
            transaction.set_rollback(True)
    except PreviewNeeded:
        pass  # rolled back on its way out; run.impact holds the difference
    return DeletionPreview(run.impact, run.generation, changed)


def confirmed_unchanged(request: HttpRequest, organization_id: int) -> bool:
    """Inside the caller's transaction: whether the organization's generation (its row now
    locked) is still the one the confirmation page was shown at."""
    current = locked_generation(organization_id)
    return current is not None and request.POST.get(DELETION_GENERATION) == str(current)


def _without_confirmation(request: HttpRequest) -> None:
    # Django's deletion views delete on any non-empty POST (the object's page) or on
    # post=yes (the bulk action): the page is shown again instead.
    request.POST = QueryDict(mutable=False)


class PreviewsDeletion:
    """For a model admin whose objects' deletion changes what projects receive: the
    deletion's page, and the bulk "Delete selected" action's, show the impact on every
    project first, and a confirmation deletes only if the organization did not change since
    the page was shown (else the page is shown again with the difference as it is now)."""

    delete_confirmation_template = "admin/orgenv/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/orgenv/delete_selected_confirmation.html"

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        parent = super()
        obj = self.get_object(request, unquote(object_id))
        organization_id = access.organization_of(obj) if obj is not None else None
        if organization_id is None or not self.has_delete_permission(request, obj):
            return parent.delete_view(request, object_id, extra_context)  # 404s, 403s

        def delete() -> None:
            self.delete_model(request, obj)

        changed = False
        if request.method == "POST" and request.POST:
            with transaction.atomic():
                if confirmed_unchanged(request, organization_id):
                    return parent.delete_view(request, object_id, extra_context)
            changed = True
            _without_confirmation(request)
        context = {
            **(extra_context or {}),
            "deletion": deletion_preview(organization_id, delete, changed=changed),
        }
        response = parent.delete_view(request, object_id, context)
        response["Cache-Control"] = "no-store"
        return response

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_delete_selected_previewed, name, description)
        return actions


def _delete_selected_previewed(
    modeladmin: Any, request: HttpRequest, queryset: Any
) -> HttpResponse | None:
    """Django's "Delete selected" action, with the deletion's impact on its confirmation page
    and the same check on confirming as a single deletion."""
    objects = list(queryset)
    organizations = {access.organization_of(obj) for obj in objects}
    if len(organizations) != 1 or None in organizations:
        messages.error(request, ONE_ORGANIZATION)
        return None
    (organization_id,) = organizations
    changed = False
    if request.POST.get("post"):
        with transaction.atomic():
            if confirmed_unchanged(request, organization_id):
                return delete_selected(modeladmin, request, queryset)
        changed = True
        post = request.POST.copy()
        del post["post"]
        request.POST = post
    ids = [obj.pk for obj in objects]

    def delete() -> None:
        chosen = queryset.model._default_manager.filter(pk__in=ids)
        modeladmin.delete_queryset(request, chosen)

    preview = deletion_preview(organization_id, delete, changed=changed)
    response = delete_selected(modeladmin, request, queryset)
    if response is not None:
        response.context_data["deletion"] = preview
        response["Cache-Control"] = "no-store"
    return response
