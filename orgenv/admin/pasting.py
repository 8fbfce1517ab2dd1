"""Paste .env on a group page: dotenv text in, variables added or updated, in two steps.

1. The admin pastes; the text is read with import_env's rules (orgenv.configuration.importing)
   — a bad line refuses the whole text, every problem with its line number;
2. the review lists each name (new, value replaced, unchanged) with the secret toggle ticked
   for the names that look secret and for existing secrets (which stay secret); the admin
   imports, and everything is written in one transaction, or nothing;
3. when the import changes what projects receive, the impact preview comes first
   (orgenv.admin.previewing): Confirm writes exactly what it showed, Back returns to the
   review.

The pasted text travels from the first step to the second in the page itself (a hidden field
of the admin's own form, in a no-store response); from the import to its preview it is kept
encrypted on the server, as every previewed save is. The review never shows a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from orgenv import services
from orgenv.configuration import importing

from .previewing import (
    Preview,
    answers_a_preview,
    current_run,
    render_preview,
    save_with_preview,
)

SOURCE = "pasted in the admin"


class PasteForm(forms.Form):
    text = forms.CharField(
        label="Paste .env",
        strip=False,
        widget=forms.Textarea(
            attrs={
                "rows": 12,
                "spellcheck": "false",
                "autocomplete": "off",
                "class": "paste-text",
                "placeholder": "DATABASE_URL=postgres://…\nAPI_KEY=…\n# comments are fine",
            }
        ),
        help_text="One NAME=value per line, as in a .env file: quotes, # comments and "
        "`export` are understood; nothing is interpolated.",
    )


@dataclass(frozen=True)
class ReviewRow:
    name: str
    line: int
    outcome: str  # "new", "replaces the value", "unchanged"
    stored_secret: bool  # an existing secret: stays secret
    proposed: str  # why it looks secret, or ""


def paste_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    group = model_admin.get_object(request, unquote(object_id))
    if group is None or not model_admin.has_change_permission(request, group):
        raise Http404("No such group.")
    from .workspace import frame_context

    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        **frame_context(request, group.organization, "variables"),
        "title": f"Paste .env into {group.name}",
        "opts": model_admin.model._meta,
        "original": group,
        "group": group,
        "change_url": reverse("admin:orgenv_variablegroup_change", args=(group.pk,)),
    }

    def page() -> HttpResponse:
        """The paste box, or the review of the text posted (step "review")."""
        form = PasteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            entries = _read(group, form.cleaned_data["text"], context)
            if entries is not None:
                context["rows"] = _review(group, entries)
                context["hidden_text"] = forms.Textarea(attrs={"hidden": True}).render(
                    "text", form.cleaned_data["text"]
                )
        context["form"] = form
        return _render(model_admin, request, "admin/orgenv/variablegroup/paste.html", context)

    def save() -> HttpResponse:
        form = PasteForm(request.POST)
        entries = _read(group, form.cleaned_data["text"], context) if form.is_valid() else None
        if entries is None:
            context["form"] = form
            return _render(model_admin, request, "admin/orgenv/variablegroup/paste.html", context)
        chosen = set(request.POST.getlist("secret")) & {e.name for e in entries}
        run = current_run(request)
        run.begin(group.organization_id)
        outcomes = importing.variables_import(
            group=group, entries=entries, secret=chosen, source=SOURCE
        )
        run.end()
        counts = ", ".join(
            f"{len(outcomes[o])} {o}"
            for o in (services.CREATED, services.UPDATED, services.UNCHANGED)
        )
        model_admin.message_user(
            request,
            f"Imported {len(entries)} variable(s) into {group.name}: {counts}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(context["change_url"])

    def show_preview(preview: Preview) -> HttpResponse:
        context.update(
            title=f"Review the import into {group.name}",
            preview=preview,
            form_url=request.get_full_path(),
            discard_url=context["change_url"],
            back_label="Back to the review",
        )
        return render_preview(request, context, model_admin.admin_site.name)

    importing_now = request.POST.get("step") == "import" or answers_a_preview(request)
    if request.method != "POST" or not importing_now:
        return page()
    return save_with_preview(
        request,
        target=f"paste:{group.pk}",
        save=save,
        show_preview=show_preview,
        show_form=page,
        back_note="Not imported yet: check the names and secrets, then import again.",
    )


def _read(group: Any, text: str, context: dict[str, Any]) -> list | None:
    """The entries of the text, or None with the problems in the context."""
    try:
        return importing.read(text, allow_loader_names=group.organization.allow_loader_names)
    except importing.ImportRefused as refused:
        context["problems"] = refused.problems
        return None


def _render(
    model_admin: Any, request: HttpRequest, template: str, context: dict[str, Any]
) -> HttpResponse:
    request.current_app = model_admin.admin_site.name
    response = TemplateResponse(request, template, context)
    response["Cache-Control"] = "no-store"  # the pasted values are in the page
    return response


def _review(group: Any, entries: list) -> list[ReviewRow]:
    stored = {v.name: v for v in group.variables.all()}
    rows = []
    for entry in entries:
        current = stored.get(entry.name)
        if current is None:
            outcome = "new"
        elif current.value == entry.value:
            outcome = "unchanged"
        else:
            outcome = "replaces the value"
        rows.append(
            ReviewRow(
                name=entry.name,
                line=entry.line,
                outcome=outcome,
                stored_secret=bool(current and current.is_secret),
                proposed=importing.proposed_secret(entry.name, entry.value),
            )
        )
    return rows
