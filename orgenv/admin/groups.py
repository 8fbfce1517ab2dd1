"""Variable groups and their variables.

The group page reads top to bottom as the admin works: the group (name, description,
environment, priority), then its variables (name, value, the key-icon secret toggle,
delete; or Paste .env), then whom it reaches (access, projects with their environments, the
ones the guard refuses disabled with the reason, teams), then read-only panels.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from orgenv.audit import timeline
from orgenv.hygiene.report import overdue_secrets
from orgenv.models import Project, Team, Variable, VariableGroup

from .base import OrganizationFilter, OrgScopedAdmin, OrgScopedInline
from .deleting import PreviewsDeletion
from .forms import DefinitionForm, GroupForm
from .panels import group_panels
from .pasting import paste_view
from .previewing import PreviewsImpact
from .requesting import OpensChangeRequests, ProtectedGroupVariables
from .scanning import WarnsAboutPublicValues
from .widgets import GuardedPicker, Picker

HISTORY_ENTRIES = 100  # the newest changes of a group and its variables; the audit has all


class VariableInline(OrgScopedInline):
    model = Variable
    form = DefinitionForm
    fields = ("name", "value", "is_secret", "not_a_secret")
    template = "admin/orgenv/variables_inline.html"


@admin.register(VariableGroup)
class VariableGroupAdmin(
    OpensChangeRequests, PreviewsImpact, PreviewsDeletion, WarnsAboutPublicValues, OrgScopedAdmin
):
    form = GroupForm
    workspace_tab = "variables"
    list_display = (
        "name",
        "organization",
        "environment",
        "priority",
        "access",
        "overdue_secrets",
        "updated_at",
    )
    list_filter = (OrganizationFilter, "access", "environment")
    list_select_related = ("organization",)
    search_fields = ("name", "description")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "organization",
                    "name",
                    "description",
                    ("environment", "priority"),
                    "max_age_days",
                )
            },
        ),
        (
            "Review",
            {
                "fields": (("protected", "required_approvals"),),
                "description": "A protected group's changes made here open a change request "
                "that another org admin approves before it applies. A new group labelled "
                "production is always created protected.",
            },
        ),
        (
            "Access",
            {
                "fields": ("access", "projects", "teams"),
                "description": "Which projects receive these variables. A group labelled "
                "with an environment reaches only projects with the same label: the others "
                "cannot be selected, and access to all projects or through a team skips them.",
            },
        ),
    )
    radio_fields = {"access": admin.VERTICAL}
    inlines = [VariableInline]
    change_form_template = "admin/orgenv/variablegroup/change_form.html"
    object_history_list_template = "admin/orgenv/variablegroup/history_list.html"

    @admin.display(description="overdue secrets")
    def overdue_secrets(self, group: VariableGroup) -> str:
        # One query per group that sets a maximum age; the others need none.
        if group.max_age_days is None:
            return "—"
        count = len(overdue_secrets(group, now=timezone.now()))
        return f"⚠ {count} overdue" if count else "0"

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "projects":
            kwargs["widget"] = GuardedPicker(
                side="group",
                empty_text="This organization has no project yet.",
                label_of=lambda project: project.slug,
            )
        elif db_field.name == "teams":
            kwargs["widget"] = Picker(
                empty_text="This organization has no team.", label_of=_team_label
            )
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.related_model is Project:
            field.queryset = field.queryset.order_by("environment", "slug")
        elif db_field.related_model is Team:
            field.queryset = field.queryset.prefetch_related("projects")
        return field

    def get_urls(self) -> list:
        paste = self.admin_site.admin_view(self.paste)
        return [
            path("<path:object_id>/paste/", paste, name="orgenv_variablegroup_paste"),
            *super().get_urls(),
        ]

    def paste(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self.paste_into(request, object_id, lambda: paste_view(self, request, object_id))

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The group's history with its variables' changes (a rotation, a new secret, a
        deletion), merged newest first from the audit timeline, values censored."""
        group = self._scoped_object(request, object_id)
        extra_context = {
            "group_changes": timeline.page(
                group.organization,
                timeline.Filters(group=group.name, kind=timeline.CHANGES),
                0,
                HISTORY_ENTRIES,
            ),
            "applied_requests": group.change_requests.filter(status="applied")
            .prefetch_related("approvals")
            .order_by("-closed_at")[:HISTORY_ENTRIES],
            **(extra_context or {}),
        }
        return super().history_view(request, object_id, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        group = self.get_object(request, object_id)
        if group is not None and self.has_view_permission(request, group):
            extra_context["group_panels"] = group_panels(group)
            extra_context["paste_url"] = reverse(
                "admin:orgenv_variablegroup_paste", args=(group.pk,)
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def response_add(self, request: HttpRequest, obj: VariableGroup, *args: Any) -> HttpResponse:
        return self._back_to_workspace(request, obj, super().response_add(request, obj, *args))

    def response_change(self, request: HttpRequest, obj: VariableGroup) -> HttpResponse:
        return self._back_to_workspace(request, obj, super().response_change(request, obj))

    def _back_to_workspace(
        self, request: HttpRequest, obj: VariableGroup, response: HttpResponse
    ) -> HttpResponse:
        """ "Save" returns to the organization's Environment Variables tab, with the admin's
        message; the other buttons (continue, add another, a popup) keep their behaviour."""
        others = ("_continue", "_addanother", "_saveasnew", "_popup")
        if response.status_code != 302 or any(key in request.POST for key in others):
            return response
        return HttpResponseRedirect(
            reverse("admin:orgenv_workspace", args=(obj.organization.slug,))
        )


def _team_label(team: Team) -> str:
    projects = ", ".join(sorted(p.slug for p in team.projects.all()))
    return f"team {team.slug}" + (f" ({projects})" if projects else "")


@admin.register(Variable)
class VariableAdmin(
    ProtectedGroupVariables,
    PreviewsImpact,
    PreviewsDeletion,
    WarnsAboutPublicValues,
    OrgScopedAdmin,
):
    """Every variable of every group, for finding a name; values stay on the change page."""

    form = DefinitionForm
    workspace_tab = "variables"
    list_display = ("name", "group", "is_secret", "updated_at")
    list_filter = (OrganizationFilter, "is_secret")
    list_select_related = ("group",)
    search_fields = ("name", "group__name")
    fields = ("group", "name", "value", "is_secret", "not_a_secret")
