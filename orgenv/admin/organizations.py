"""Organizations and their memberships. An org admin edits their own organization; only a
superuser creates or deletes one."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from orgenv.models import Membership, Organization

from .base import OrgScopedAdmin, OrgScopedInline


class MembershipInline(OrgScopedInline):
    model = Membership
    fields = ("user", "role")
    scope_users_to_members = False  # this is where a user becomes a member


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    list_display = ("slug", "name")
    search_fields = ("slug", "name")
    fields = ("slug", "name")
    inlines = [MembershipInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        # Deleting an organization deletes every group, value and token in it.
        return request.user.is_superuser
