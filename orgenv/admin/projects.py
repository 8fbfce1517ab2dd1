"""Projects (with their effective environment) and teams."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from orgenv.models import Project, ProjectVariable, Team

from .base import OrganizationFilter, OrgScopedAdmin, OrgScopedInline
from .forms import DefinitionForm
from .panels import effective_environment
from .scanning import WarnsAboutPublicValues


class ProjectVariableInline(OrgScopedInline):
    model = ProjectVariable
    form = DefinitionForm
    fields = ("name", "value", "is_secret", "not_a_secret")


@admin.register(Project)
class ProjectAdmin(WarnsAboutPublicValues, OrgScopedAdmin):
    list_display = ("slug", "name", "organization", "environment")
    list_filter = (OrganizationFilter, "environment")
    list_select_related = ("organization",)
    search_fields = ("slug", "name")
    fields = ("organization", "slug", "name", "environment", "members", "teams")
    filter_horizontal = ("members", "teams")
    inlines = [ProjectVariableInline]
    change_form_template = "admin/orgenv/project/change_form.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        project = self.get_object(request, object_id)
        if project is not None and self.has_view_permission(request, project):
            rows, layers = effective_environment(project)
            extra_context.update(
                effective_rows=rows,
                effective_conflicts=layers.resolution.conflicts,
                reaching_groups=layers.reaching,
                skipped_groups=[
                    g for g in layers.groups if g.reach.skipped_because.startswith("environment")
                ],
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ProjectVariable)
class ProjectVariableAdmin(WarnsAboutPublicValues, OrgScopedAdmin):
    """Every project variable, for finding a name; values stay on the change page."""

    form = DefinitionForm
    list_display = ("name", "project", "is_secret", "updated_at")
    list_filter = (OrganizationFilter, "is_secret")
    list_select_related = ("project__organization",)
    search_fields = ("name", "project__slug")
    fields = ("project", "name", "value", "is_secret", "not_a_secret")


@admin.register(Team)
class TeamAdmin(OrgScopedAdmin):
    list_display = ("slug", "organization")
    list_select_related = ("organization",)
    search_fields = ("slug",)
    fields = ("organization", "slug", "members")
    filter_horizontal = ("members",)
