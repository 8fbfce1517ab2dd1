"""The AuditEvent admin: view only, scoped to the user's organizations (orgenv.access).

Registered from OrgenvConfig.ready. No add, change or delete permission for anyone, the
superuser included: the records are append-only (see AuditEvent and prune_audit).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orgenv import access
from orgenv.models import AuditEvent


class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "kind", "actor", "organization_slug", "project_slug", "group_name")
    list_filter = ("kind",)
    search_fields = ("actor", "project_slug", "group_name", "token_prefix")
    date_hierarchy = "at"
    list_select_related = False
    actions = None
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        return access.restrict(super().get_queryset(request), request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(access.admin_organization_ids(request.user))

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        if not access.admin_organization_ids(request.user):
            return False
        if obj is None:
            return True
        return access.is_org_admin(request.user, obj.organization_id or 0)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


if not admin.site.is_registered(AuditEvent):
    admin.site.register(AuditEvent, AuditEventAdmin)
