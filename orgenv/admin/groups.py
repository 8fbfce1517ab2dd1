"""Variable groups and their variables."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from orgenv.hygiene.report import overdue_secrets
from orgenv.models import Variable, VariableGroup

from .base import OrganizationFilter, OrgScopedAdmin, OrgScopedInline
from .forms import DefinitionForm, GroupForm
from .panels import group_panels
from .scanning import WarnsAboutPublicValues


class VariableInline(OrgScopedInline):
    model = Variable
    form = DefinitionForm
    fields = ("name", "value", "is_secret", "not_a_secret")


@admin.register(VariableGroup)
class VariableGroupAdmin(WarnsAboutPublicValues, OrgScopedAdmin):
    form = GroupForm
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
    fields = (
        "organization",
        "name",
        "description",
        "environment",
        "priority",
        "access",
        "max_age_days",
        "projects",
        "teams",
    )
    filter_horizontal = ("projects", "teams")
    inlines = [VariableInline]
    change_form_template = "admin/orgenv/variablegroup/change_form.html"

    @admin.display(description="overdue secrets")
    def overdue_secrets(self, group: VariableGroup) -> str:
        # One query per group that sets a maximum age; the others need none.
        if group.max_age_days is None:
            return "—"
        count = len(overdue_secrets(group, now=timezone.now()))
        return f"⚠ {count} overdue" if count else "0"

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
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Variable)
class VariableAdmin(WarnsAboutPublicValues, OrgScopedAdmin):
    """Every variable of every group, for finding a name; values stay on the change page."""

    form = DefinitionForm
    list_display = ("name", "group", "is_secret", "updated_at")
    list_filter = (OrganizationFilter, "is_secret")
    list_select_related = ("group",)
    search_fields = ("name", "group__name")
    fields = ("group", "name", "value", "is_secret", "not_a_secret")
