"""The tenancy rules of the admin, in one base class for every model admin and inline.

An organization admin (a staff user with an admin Membership) works only on the objects of
the organizations they administer; a superuser works on everything; a staff user without an
admin membership sees nothing. Three places must agree, and all ask orgenv.access:

- what is listed: changelists (`get_queryset`) and the permissions the index reads;
- what can be chosen: foreign-key and many-to-many choices, limited to the object's own
  organization (the user's organizations on an add page), so a tampered POST naming another
  organization's project fails with "Select a valid choice";
- what is saved: `OrgScopedForm.clean` checks that every related object belongs to the
  organization being saved, which also covers admins of several organizations and superusers.

Permissions come from memberships, not Django model permissions: an org admin needs none.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from orgenv import access
from orgenv.admin.history import CensoredHistoryAdmin
from orgenv.models import Membership, Organization

# The one place the history base class is chosen: the audit work swaps in an admin that
# censors values on history pages, and every orgenv admin follows.
HistoryAdmin = CensoredHistoryAdmin

_ORG_IDS = "_orgenv_admin_org_ids"
_FORM_OBJECT = "_orgenv_form_object"


def admin_org_ids(request: HttpRequest) -> set[int]:
    """The organizations the requesting user administers, asked once per request: the
    index and a changelist check permissions many times."""
    ids = getattr(request, _ORG_IDS, None)
    if ids is None:
        ids = access.admin_organization_ids(request.user)
        setattr(request, _ORG_IDS, ids)
    return ids


def may_manage(request: HttpRequest, obj: Model | None = None) -> bool:
    """Whether the user may view and change `obj` (or objects of this kind, when None)."""
    if request.user.is_superuser:
        return True
    ids = admin_org_ids(request)
    if not ids:
        return False
    return obj is None or access.organization_of(obj) in ids


class OrganizationFilter(admin.SimpleListFilter):
    """Filter any changelist by organization slug, listing only administered organizations.

    The parameter is `organization__slug__exact` on every model (even where the path is
    group__organization), so one link shape works everywhere, e.g. "Manage acme" →
    /admin/orgenv/variablegroup/?organization__slug__exact=acme.
    """

    title = "organization"
    parameter_name = "organization__slug__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        orgs = access.administered_organizations(request.user).order_by("slug")
        return [(slug, name) for slug, name in orgs.values_list("slug", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        path = access.ORGANIZATION_PATH[queryset.model]
        lookup = "slug" if path == "pk" else f"{path}__slug"
        return queryset.filter(**{lookup: self.value()})


def preset_organization_id(request: HttpRequest) -> int | None:
    """The organization an add page works in: `?organization=<slug>` from the workspace's
    "Add" links (when the user administers it), or the only one the user administers.
    None when the user must choose (a superuser, or an admin of several without a preset)."""
    slug = request.GET.get("organization", "")
    orgs = access.administered_organizations(request.user)
    if slug:
        return orgs.filter(slug=slug).values_list("pk", flat=True).first()
    if request.user.is_superuser:
        return None
    ids = admin_org_ids(request)
    return next(iter(ids)) if len(ids) == 1 else None


def _form_organization_id(request: HttpRequest) -> int | None:
    obj = getattr(request, _FORM_OBJECT, None)
    if obj is None:
        return preset_organization_id(request)
    return access.organization_of(obj)


class ScopedChoicesMixin:
    """Foreign-key and many-to-many choices limited to what the user administers, and to
    the edited object's own organization once it has one."""

    def scoped_choices(self, model: type[Model], request: HttpRequest) -> QuerySet | None:
        org_id = _form_organization_id(request)
        if model is Organization:
            orgs = access.administered_organizations(request.user)
            return orgs.filter(pk=org_id) if org_id is not None else orgs
        if model in access.ORGANIZATION_PATH:
            path = access.ORGANIZATION_PATH[model]
            scoped = access.restrict(model._default_manager.all(), request.user)
            if path == "organization":
                scoped = scoped.select_related("organization")  # their labels name it
            return scoped.filter(**{path: org_id}) if org_id is not None else scoped
        if model is get_user_model():
            # Users are chosen among the organization's members (Membership names them).
            org_ids = [org_id] if org_id is not None else admin_org_ids(request)
            members = Membership.objects.filter(organization_id__in=org_ids).values("user_id")
            return model._default_manager.filter(pk__in=members).order_by("username")
        return None

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        choices = self.scoped_choices(db_field.related_model, request)
        if choices is not None:
            kwargs["queryset"] = choices
            if db_field.related_model is Organization and _form_organization_id(request):
                # The organization is already chosen (the workspace's "Add" link, or the
                # only one the user administers): no "---------" to pick first.
                kwargs["empty_label"] = None
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        choices = self.scoped_choices(db_field.related_model, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


class OrgScopedForm(forms.ModelForm):
    """Refuses, field by field, any related object of another organization than the one the
    object belongs to: a grant never crosses organizations, and nothing is saved."""

    def organization_id(self) -> int | None:
        chosen = self.cleaned_data.get("organization")
        if isinstance(chosen, Organization):
            return chosen.pk
        if self.instance.pk is not None or "organization" not in self.fields:
            return access.organization_of(self.instance)
        return None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        org_id = self.organization_id()
        if org_id is None:
            return cleaned
        user_model = get_user_model()
        for name, field in self.fields.items():
            if not isinstance(field, forms.ModelChoiceField) or not cleaned.get(name):
                continue
            chosen = cleaned[name]
            objects = [chosen] if isinstance(chosen, Model) else list(chosen)
            if field.queryset.model is user_model:
                self._check_members(name, org_id, objects)
                continue
            for obj in objects:
                other = access.organization_of(obj)
                if other is not None and other != org_id and not isinstance(obj, Organization):
                    self.add_error(
                        name,
                        f"{obj._meta.verbose_name.capitalize()} {obj} belongs to another "
                        "organization: choose only objects of this organization.",
                    )
        return cleaned

    def _check_members(self, name: str, org_id: int, users: list[Any]) -> None:
        if self._meta.model is Membership:
            return  # a membership is how a user joins
        members = set(
            Membership.objects.filter(organization_id=org_id, user__in=users).values_list(
                "user_id", flat=True
            )
        )
        for user in users:
            if user.pk not in members:
                self.add_error(
                    name,
                    f"User {user} is not a member of this organization: add a membership on "
                    "the organization page first.",
                )


class OrgScopedAdmin(ScopedChoicesMixin, HistoryAdmin):
    """Base of every orgenv model admin (see the module docstring)."""

    form = OrgScopedForm
    list_filter: tuple[Any, ...] = (OrganizationFilter,)
    history_list_display = ["history_actor"]
    # The workspace tab (orgenv.admin.workspace.TABS) this model's pages belong to: they
    # show the organization's frame above the form. Empty: no frame.
    workspace_tab = ""

    def workspace_frame(self, request: HttpRequest, object_id: str | None) -> dict[str, Any]:
        """The frame's context for an object page (or an add page with its organization
        preset), if the user administers that organization."""
        if not self.workspace_tab:
            return {}
        from .workspace import audit_url, frame_context  # the workspace imports this module

        obj = self.get_object(request, object_id) if object_id else None
        org_id = access.organization_of(obj) if obj is not None else None
        if object_id is None:
            org_id = preset_organization_id(request)
        if org_id is None or not may_manage(request, obj):
            return {}
        organization = Organization.objects.filter(pk=org_id).first()
        if organization is None or not access.is_org_admin(request.user, organization):
            return {}
        frame = frame_context(request, organization, self.workspace_tab)
        if obj is not None:
            frame["audit_url"] = audit_url(organization, obj)
            frame["object_actions"] = self.object_actions(request, obj)
        return frame

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {**self.workspace_frame(request, object_id), **(extra_context or {})}
        return super().history_view(request, object_id, extra_context)

    def object_actions(self, request: HttpRequest, obj: Model) -> list[tuple[str, str, str]]:
        """Extra buttons of an object's page: (label, url, css class)."""
        return []

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return access.restrict(super().get_queryset(request), request.user)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        # Saving an object none of whose own columns changed (only an inline row, or only
        # its grants) would write an empty "changed" history row. Grants are saved by
        # save_related (form.save_m2m), which records them with their own history row.
        many = {f.name for f in self.model._meta.many_to_many}
        if change and not set(form.changed_data) - many:
            return
        super().save_model(request, obj, form, change)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The organization filter's parameter looks like a relation lookup to the admin's
        # check; the filter applies it itself, inside the scoped queryset.
        if lookup == OrganizationFilter.parameter_name and OrganizationFilter in self.list_filter:
            return True
        return super().lookup_allowed(lookup, value, request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_manage(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        # An object never moves between organizations: its grants would cross them.
        if obj is not None and any(f.name == "organization" for f in self.model._meta.fields):
            readonly += ("organization",)
        return readonly

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        # `?organization=<slug>` names the organization by slug; the field wants its id.
        initial.pop("organization", None)
        if any(f.name == "organization" for f in self.model._meta.fields):
            org_id = preset_organization_id(request)
            if org_id is not None:
                initial["organization"] = org_id
        return initial

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        # Choices are scoped while the form class is built (formfield_for_*), which does
        # not receive the object: hand it over on the request.
        setattr(request, _FORM_OBJECT, obj)
        form = super().get_form(request, obj, **kwargs)
        organization = form.base_fields.get("organization")
        if organization is not None:
            # No "edit / view the organization" icons beside the choice: an object's page
            # is not where an organization is changed. (A fresh class per request.)
            for attr in ("can_add_related", "can_change_related", "can_view_related"):
                setattr(organization.widget, attr, False)
        return form

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {**self.workspace_frame(request, object_id), **(extra_context or {})}
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            # The m2m_changed guards of orgenv.signals are the last line behind the forms'
            # own checks; should one fire (a race), the transaction has rolled back and the
            # admin gets the reason instead of a server error.
            self.message_user(
                request, " ".join(exc.messages) + " Nothing was saved.", messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())


class OrgScopedInline(ScopedChoicesMixin, admin.TabularInline):
    """Inlines follow their parent: whoever manages the parent manages its rows."""

    extra = 0

    def get_extra(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0  # a new group or project starts with one empty row

    def get_formset(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        setattr(request, _FORM_OBJECT, obj)
        return super().get_formset(request, obj, **kwargs)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_manage(request, obj)
