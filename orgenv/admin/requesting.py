"""Change requests in the workspace: a protected group's save or deletion opens one instead of
applying (OpensChangeRequests; its tab and pages are orgenv.admin.reviewing), and the paths
that cannot open one refuse (ProtectedGroupVariables, a project page's grants).

Opening runs the admin's own save (or deletion) for real inside a transaction, reads the group
before the first write and after the last one (orgenv.changes.state.snapshot), and rolls it all
back: the request holds the difference, its values moved as stored tokens, never decrypted to
be shown. So a request is exactly what the form would have saved, validated by the same form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from orgenv.changes import services
from orgenv.changes.state import Snapshot, delta, group_version, snapshot
from orgenv.models import ChangeRequest, VariableGroup

from .previewing import PreviewsImpact, _Captured, answers_a_preview

_CAPTURE = "_orgenv_change_capture"
PROTECTED_NOTE = (
    "This group is protected: saving opens a change request that {n} other org admin{s} "
    "approve{v} before it applies."
)


PROTECTED_BULK = (
    "{names}: a protected group is deleted from its own page, which opens a change request. "
    "Nothing was deleted."
)


class _Done(Exception):
    """Raised once the save has written everything: it rolls the save back."""


@dataclass
class Capture:
    group_id: int
    after: Snapshot | None = None
    done: bool = False


def open_request(
    request: HttpRequest,
    group: VariableGroup,
    change: Callable[[], HttpResponse | None],
    *,
    deletion: bool = False,
    by_state: bool = False,
) -> HttpResponse | None:
    """Run `change` (the admin's save, or the deletion) measured and rolled back, and open a
    change request for what it did. Returns the answer of a save that did not go through (a
    form with errors), else a redirect to the request (or None when `change` answers nothing
    and nothing changed)."""
    capture = Capture(group.pk)
    setattr(request, _CAPTURE, capture)
    real, request._messages = request._messages, _Captured(request)
    try:
        with transaction.atomic():
            version = group_version(group.pk)
            before = snapshot(group.pk)
            response = change()
            if deletion:
                capture.done = True
            elif by_state:
                # A page whose save has no hook (a paste, a restore): it saved if the group
                # differs now; otherwise its answer (a preview, errors) is shown as it is.
                capture.after = snapshot(group.pk)
                capture.done = bool(delta(before, capture.after))
            if not capture.done:
                transaction.set_rollback(True)
                return response  # not saved: the form with its errors
            raise _Done
    except _Done:
        pass
    finally:
        request._messages = real
        delattr(request, _CAPTURE)
    # A deletion rolled back leaves the instance without its pk: read it again.
    group = VariableGroup.objects.select_related("organization").get(pk=capture.group_id)
    opened, replaced = services.request_open(
        group=group,
        author=request.user,
        before=before,
        after=None if deletion else capture.after,
        version=version,
        comment=request.POST.get("_change_comment", ""),
    )
    if opened is None:
        messages.info(request, f"Nothing to change in {group.name}: no change request opened.")
        return HttpResponseRedirect(reverse("admin:orgenv_variablegroup_change", args=(group.pk,)))
    verb = "replaced your open change request" if replaced else "opened change request"
    messages.success(
        request,
        f"{group.name} is protected, so nothing changed yet: this {verb} #{opened.pk}. "
        f"It applies once another org admin approves it.",
    )
    return HttpResponseRedirect(services.link(opened))


def capturing(request: HttpRequest) -> Capture | None:
    return getattr(request, _CAPTURE, None)


class OpensChangeRequests:
    """For the group admin, first among its bases: saving or deleting a protected group
    opens a change request (the request's page shows the impact, so the save skips its
    preview)."""

    def _protected(self, request: HttpRequest, object_id: str | None) -> VariableGroup | None:
        if object_id is None:
            return None
        group = self.get_object(request, unquote(object_id))
        if group is None or not group.protected:
            return None
        return group

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        group = self._protected(request, object_id) if request.method == "POST" else None
        if group is None or not self.has_change_permission(request, group):
            return super().changeform_view(request, object_id, form_url, extra_context)
        if answers_a_preview(request):
            messages.error(
                request,
                f"{group.name} is protected now: nothing was saved. Make the change again; "
                "saving opens a change request.",
            )
            return HttpResponseRedirect(request.path)
        plain = super(PreviewsImpact, self)  # the save itself, without its preview
        return open_request(
            request,
            group,
            lambda: plain.changeform_view(request, object_id, form_url, extra_context),
        )

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        capture = capturing(request)
        if capture is not None:
            capture.after, capture.done = snapshot(capture.group_id), True
            raise _Done
        return super().response_change(request, obj)

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        group = self._protected(request, object_id)
        parent = super()
        if group is None or request.POST.get("_restore") != "confirm":
            return parent.history_form_view(request, object_id, version_id, extra_context)
        return open_request(
            request,
            group,
            lambda: parent.history_form_view(request, object_id, version_id, extra_context),
            by_state=True,
        )

    def paste_into(self, request: HttpRequest, object_id: str, paste: Callable) -> HttpResponse:
        """Paste .env into a protected group: its import opens a change request."""
        group = self._protected(request, object_id) if request.method == "POST" else None
        if group is None:
            return paste()
        return open_request(request, group, paste, by_state=True)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        group = self._protected(request, object_id)
        if group is None or not self.has_delete_permission(request, group):
            return super().delete_view(request, object_id, extra_context)
        if request.method == "POST" and request.POST.get("post") == "yes":
            return open_request(
                request, group, lambda: self.delete_model(request, group), deletion=True
            )
        context = {**(extra_context or {}), "protected_deletion": True}
        return super().delete_view(request, object_id, context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            delete, name, description = actions["delete_selected"]

            def refusing(modeladmin: Any, request: HttpRequest, queryset: Any) -> Any:
                protected = sorted(queryset.filter(protected=True).values_list("name", flat=True))
                if protected:
                    messages.error(request, PROTECTED_BULK.format(names=", ".join(protected)))
                    return None
                return delete(modeladmin, request, queryset)

            actions["delete_selected"] = (refusing, name, description)
        return actions

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        group = self._protected(request, object_id)
        if group is not None:
            n = group.required_approvals
            extra_context["protected_note"] = PROTECTED_NOTE.format(
                n=n, s="" if n == 1 else "s", v="s" if n == 1 else ""
            )
            extra_context["open_requests"] = list(
                ChangeRequest.objects.open().filter(group=group).order_by("-created_at")[:10]
            )
        return super().change_view(request, object_id, form_url, extra_context)


class ProtectedGroupVariables:
    """For the admin of single variables: a protected group's variables are changed on the
    group's page (which opens a change request), never one by one here."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.group.protected:
            return False
        return super().has_change_permission(request, obj)

    # Deletion is refused in the view, not by has_delete_permission: the group's own deletion
    # (a change request) asks that permission of each of its variables.
    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        variable = self.get_object(request, unquote(object_id))
        if variable is not None and variable.group.protected:
            raise PermissionDenied(PROTECTED_VARIABLE.format(group=variable.group.name))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        protected = queryset.filter(group__protected=True).values_list("group__name", flat=True)
        if protected:
            raise PermissionDenied(
                PROTECTED_VARIABLE.format(group=", ".join(sorted(set(protected))))
            )
        super().delete_queryset(request, queryset)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if obj.group.protected:
            raise PermissionDenied(PROTECTED_VARIABLE.format(group=obj.group.name))
        super().save_model(request, obj, form, change)


PROTECTED_VARIABLE = (
    "{group} is protected: add or change its variables on the group's page, which opens a "
    "change request."
)
