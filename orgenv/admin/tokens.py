"""Project tokens: issued through orgenv.tokens.token_issue, shown once, listed by prefix.

The full token is rendered in the response to the add form's POST and nowhere else: not in
a message (messages may sit in a cookie), not in a redirect, never in a later page.
Reloading that page re-submits the form, which would issue a second token, so the page
tells the admin to copy the token now (a Copy button does it).

Revoking asks first, from the token's page ("Revoke") as from the list's action, and is
audited by orgenv.tokens.token_revoke. A full token pasted in a search box finds its row by
its public part (orgenv.selectors.workspace.token_search_prefix).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from orgenv.models import ProjectToken
from orgenv.selectors.workspace import token_search_prefix
from orgenv.tokens import check_expiry_change, expiry, token_issue, token_revoke, token_update

from .base import OrganizationFilter, OrgScopedAdmin, OrgScopedForm

_ISSUED = "_orgenv_issued_token"


class TokenIssueForm(OrgScopedForm):
    days = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="Expire this many days from now. Leave blank with no date for the default "
        "lifetime (TOKEN_DEFAULT_DAYS).",
    )
    never_expires = forms.BooleanField(
        required=False,
        label="Never expires",
        help_text="Only for a runner that cannot be given a new token: a leaked token that "
        "never expires works until someone revokes it.",
    )

    class Meta:
        model = ProjectToken
        fields = ("project", "name", "days", "expires_at", "never_expires")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].widget.attrs["placeholder"] = str(settings.TOKEN_DEFAULT_DAYS)
        self.fields["days"].help_text = (
            "Expire this many days from now. Leave blank with no date for the default "
            f"lifetime of {settings.TOKEN_DEFAULT_DAYS} days."
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            expiry(
                days=cleaned.get("days"),
                expires_at=cleaned.get("expires_at"),
                never_expires=bool(cleaned.get("never_expires")),
            )
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


def without_token_secret(request: HttpRequest) -> str | None:
    """When the search box (`q`) holds a whole token, the same URL with only its public part:
    the page, its links and the browser's history then never repeat the secret. None when
    there is nothing to drop."""
    search = request.GET.get("q", "")
    term = token_search_prefix(search)
    if term == search.strip() or not search:
        return None
    query = request.GET.copy()
    query["q"] = term
    return f"{request.path}?{query.urlencode()}"


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
    workspace_tab = "tokens"
    # Status second: whatever the width, a revoked or expired token never looks active.
    list_display = ("name", "status", "project", "expires_at", "last_used_at", "prefix")
    list_filter = (OrganizationFilter, TokenStatusFilter)
    list_select_related = ("project__organization",)
    search_fields = ("name", "prefix", "project__slug")
    search_help_text = "Name, project, prefix, or a whole token (its public part is searched)."
    actions = ["revoke"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        cleaned = without_token_secret(request)
        if cleaned is not None:
            return HttpResponseRedirect(cleaned)
        return super().changelist_view(request, extra_context)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        return super().get_search_results(request, queryset, token_search_prefix(search_term))

    def object_actions(self, request: HttpRequest, obj: ProjectToken) -> list:
        if obj.revoked_at is not None:
            return []
        url = reverse("admin:orgenv_projecttoken_revoke", args=(obj.pk,))
        return [("Revoke", url, "revokelink")]

    def get_urls(self) -> list:
        revoke = self.admin_site.admin_view(self.revoke_view)
        return [
            path("<path:object_id>/revoke/", revoke, name="orgenv_projecttoken_revoke"),
            *super().get_urls(),
        ]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Revoke one token: a GET asks (naming the token and what will stop working), a
        POST revokes."""
        token = self.get_object(request, unquote(object_id))
        if token is None or not self.has_change_permission(request, token):
            raise Http404("No such token.")
        back = reverse("admin:orgenv_workspace_tokens", args=(token.project.organization.slug,))
        if request.method == "POST" and token.revoked_at is None:
            token_revoke(token=token)
            self.message_user(
                request,
                f"Revoked token {token.name} ({token.prefix}…) of {token.project}: the next "
                "request with it gets 401.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(back)
        return self._confirm_revoke(request, [token], back)

    def _confirm_revoke(
        self, request: HttpRequest, tokens: list[ProjectToken], back: str, *, action: bool = False
    ) -> HttpResponse:
        from .workspace import frame_context

        organizations = {t.project.organization for t in tokens}
        context = {
            **self.admin_site.each_context(request),
            **(
                frame_context(request, tokens[0].project.organization, "tokens")
                if len(organizations) == 1
                else {}
            ),
            "title": "Revoke token" if len(tokens) == 1 else f"Revoke {len(tokens)} tokens",
            "opts": self.model._meta,
            "tokens": [(t, t.status) for t in tokens],
            "live": [t for t in tokens if t.revoked_at is None],
            "back": back,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/orgenv/projecttoken/revoke.html", context)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = TokenIssueForm if obj is None else TokenChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("project", "name", "days", "expires_at", "never_expires")
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
            never_expires=form.cleaned_data.get("never_expires", False),
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

    @admin.action(description="Revoke the selected tokens…")
    def revoke(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Like Django's "Delete selected": the first POST asks, the confirmed one acts."""
        tokens = list(queryset.select_related("project__organization"))
        if request.POST.get("post") != "yes":
            return self._confirm_revoke(request, tokens, request.get_full_path(), action=True)
        for token in tokens:
            token_revoke(token=token)
        self.message_user(
            request,
            f"Revoked {len(tokens)} token(s): " + ", ".join(t.prefix for t in tokens) + ".",
            messages.SUCCESS,
        )
        return None
