"""Organizations and their memberships. An org admin edits their own organization; only a
superuser creates or deletes one."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orgenv.models import Membership, Organization

from .base import OrgScopedAdmin, OrgScopedForm, OrgScopedInline


class MembershipForm(OrgScopedForm):
    """A member is named by username, typed: a list of every user of the installation
    would show each organization's admins the people of all the others."""

    user = forms.ModelChoiceField(
        queryset=get_user_model()._default_manager.all(),
        to_field_name="username",
        widget=forms.TextInput(attrs={"placeholder": "username"}),
        error_messages={
            "invalid_choice": "There is no user named %(value)s: the user must exist before "
            "joining an organization."
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["user"] = self.instance.user.get_username()


class MembershipInline(OrgScopedInline):
    """Superusers (operators) add members directly here; an org admin sees the rows and
    manages people on the People page, where an existing user joins only by accepting an
    invitation (SPEC "People")."""

    model = Membership
    form = MembershipForm
    fields = ("user", "role")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    workspace_tab = "people"  # its page lists the memberships
    list_display = ("slug", "name")
    search_fields = ("slug", "name")
    fields = ("slug", "name", "require_admin_two_factor", "allow_loader_names", "people")
    readonly_fields = ("people",)
    inlines = [MembershipInline]

    @admin.display(description="people")
    def people(self, obj: Organization) -> str:
        if obj.pk is None:
            return "Invite people once the organization is saved."
        url = reverse("admin:orgenv_people", kwargs={"org_slug": obj.slug})
        return format_html('<a href="{}">Invite, change roles, remove, unlock</a>', url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        # Deleting an organization deletes every group, value and token in it.
        return request.user.is_superuser
