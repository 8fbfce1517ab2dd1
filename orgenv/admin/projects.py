"""Projects (with their groups, their variables and their effective environment) and teams.

The project page onboards a project in one place: its name and environment, its own
variables, the groups that select it (granted from here with the same environment guard as
from a group's page), its people and teams, and what it finally receives.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from orgenv import services
from orgenv.models import Project, ProjectVariable, Team, VariableGroup

from .base import OrganizationFilter, OrgScopedAdmin, OrgScopedInline
from .deleting import PreviewsDeletion
from .forms import DefinitionForm, ProjectForm
from .panels import effective_environment
from .previewing import PreviewsImpact
from .scanning import WarnsAboutPublicValues
from .widgets import Picker


class ProjectVariableInline(OrgScopedInline):
    model = ProjectVariable
    form = DefinitionForm
    fields = ("name", "value", "is_secret", "not_a_secret")
    template = "admin/orgenv/variables_inline.html"
    verbose_name_plural = "its own variables (they override any group's)"


@admin.register(Project)
class ProjectAdmin(PreviewsImpact, PreviewsDeletion, WarnsAboutPublicValues, OrgScopedAdmin):
    form = ProjectForm
    workspace_tab = "projects"
    list_display = ("slug", "name", "organization", "environment")
    list_filter = (OrganizationFilter, "environment")
    list_select_related = ("organization",)
    search_fields = ("slug", "name")
    fieldsets = (
        (None, {"fields": ("organization", ("slug", "name"), "environment")}),
        ("Groups", {"fields": ("granted_groups",)}),
        ("People", {"fields": ("members", "teams")}),
    )
    filter_horizontal = ("members",)
    inlines = [ProjectVariableInline]
    change_form_template = "admin/orgenv/project/change_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        # The groups to choose from, scoped like every other choice (orgenv.admin.base):
        # a class made for this request, so no other request ever sees them.
        choices = self.scoped_choices(VariableGroup, request)
        return type(form.__name__, (form,), {"group_choices": choices.order_by("name")})

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "teams":
            kwargs["widget"] = Picker(
                empty_text="This organization has no team.",
                label_of=lambda team: f"team {team.slug}",
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.project_set_groups(
            project=form.instance, groups=form.cleaned_data.get("granted_groups") or []
        )

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

    def response_add(self, request: HttpRequest, obj: Project, *args: Any) -> HttpResponse:
        # A new project is onboarded on its own page: stay there to see what it receives.
        response = super().response_add(request, obj, *args)
        if response.status_code == 302 and "_addanother" not in request.POST:
            if "_popup" not in request.POST:
                return HttpResponseRedirect(reverse("admin:orgenv_project_change", args=(obj.pk,)))
        return response

    def response_change(self, request: HttpRequest, obj: Project) -> HttpResponse:
        response = super().response_change(request, obj)
        others = ("_continue", "_addanother", "_saveasnew", "_popup")
        if response.status_code != 302 or any(key in request.POST for key in others):
            return response
        return HttpResponseRedirect(
            reverse("admin:orgenv_workspace_projects", args=(obj.organization.slug,))
        )


@admin.register(ProjectVariable)
class ProjectVariableAdmin(
    PreviewsImpact, PreviewsDeletion, WarnsAboutPublicValues, OrgScopedAdmin
):
    """Every project variable, for finding a name; values stay on the change page."""

    form = DefinitionForm
    workspace_tab = "projects"
    list_display = ("name", "project", "is_secret", "updated_at")
    list_filter = (OrganizationFilter, "is_secret")
    list_select_related = ("project__organization",)
    search_fields = ("name", "project__slug")
    fields = ("project", "name", "value", "is_secret", "not_a_secret")


@admin.register(Team)
class TeamAdmin(PreviewsDeletion, OrgScopedAdmin):
    workspace_tab = "projects"
    list_display = ("slug", "organization")
    list_select_related = ("organization",)
    search_fields = ("slug",)
    fields = ("organization", "slug", "members")
    filter_horizontal = ("members",)
