"""Project tokens: issued through orgenv.tokens.token_issue, shown once, listed by prefix.

The full token is rendered in the response to the add form's POST and nowhere else: not in
a message (messages may sit in a cookie), not in a redirect, never in a later page.
Reloading that page re-submits the form, which would issue a second token, so the page
tells the admin to copy the token now.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from orgenv.models import ProjectToken
from orgenv.tokens import check_expiry_change, expiry, token_issue, token_revoke, token_update

from .base import OrganizationFilter, OrgScopedAdmin, OrgScopedForm

_ISSUED = "_orgenv_issued_token"


class TokenIssueForm(OrgScopedForm):
    days = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="Expire this many days from now; leave blank (and no date) for no expiry.",
    )

    class Meta:
        model = ProjectToken
        fields = ("project", "name", "days", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            expiry(days=cleaned.get("days"), expires_at=cleaned.get("expires_at"))
        except ValidationError as error:
            for field, messages_ in error.message_dict.items():
                self.add_error(field, messages_)
        return cleaned


class TokenChangeForm(OrgScopedForm):
    """An issued token: its name, and its expiry, which may only be brought forward."""

    class Meta:
        model = ProjectToken
        fields = ("name", "expires_at")
        help_texts = {
            "expires_at": "Can only be brought forward; for a longer life, issue a new token."
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "expires_at" in cleaned:
            current = ProjectToken.objects.filter(pk=self.instance.pk).values_list(
                "expires_at", flat=True
            )
            try:
                check_expiry_change(current=current.get(), new=cleaned["expires_at"])
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return ProjectToken.Status.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in ProjectToken.Status.values:
            return queryset
        return queryset.with_status(self.value())


@admin.register(ProjectToken)
class ProjectTokenAdmin(OrgScopedAdmin):
    list_display = (
        "name",
        "project",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "status",
    )
    list_filter = (OrganizationFilter, TokenStatusFilter)
    list_select_related = ("project__organization",)
    search_fields = ("name", "prefix", "project__slug")
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = TokenIssueForm if obj is None else TokenChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("project", "name", "days", "expires_at")
        return (
            "project",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        # Only the name and the expiry of an issued token can change; revoke is an action.
        return ("project", "prefix", "created_by", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ProjectToken, form: Any, change: bool) -> None:
        if change:
            token_update(token=obj, name=obj.name, expires_at=obj.expires_at)
            return
        token, plaintext = token_issue(
            project=obj.project,
            name=obj.name,
            days=form.cleaned_data.get("days"),
            expires_at=obj.expires_at,
            created_by=request.user,
        )
        # The admin goes on with `obj` (log entry, response): make it the issued row.
        for field in ProjectToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        setattr(request, _ISSUED, plaintext)

    def response_add(self, request: HttpRequest, obj: ProjectToken, *args: Any) -> HttpResponse:
        plaintext = getattr(request, _ISSUED, None)
        if plaintext is None:
            return super().response_add(request, obj, *args)
        context = {
            **self.admin_site.each_context(request),
            "title": "Token issued",
            "opts": self.model._meta,
            "token": obj,
            "plaintext": plaintext,
        }
        response = TemplateResponse(request, "admin/orgenv/projecttoken/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        tokens = list(queryset.select_related("project__organization"))
        for token in tokens:
            token_revoke(token=token)
        self.message_user(
            request,
            f"Revoked {len(tokens)} token(s): " + ", ".join(t.prefix for t in tokens) + ".",
            messages.SUCCESS,
        )
