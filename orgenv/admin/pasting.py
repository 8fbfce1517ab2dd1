"""Paste .env on a group page: dotenv text in, variables added or updated, in two steps.

1. The admin pastes; the text is read with import_env's rules (orgenv.configuration.importing)
   — a bad line refuses the whole text, every problem with its line number;
2. the review lists each name (new, value replaced, unchanged) with the secret toggle ticked
   for the names that look secret and for existing secrets (which stay secret); the admin
   confirms, and everything is written in one transaction, or nothing.

The pasted text travels from the first step to the second in the page itself (a hidden field
of the admin's own form, in a no-store response), so values are never kept on the server
between steps. The review never shows a value.
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
    form = PasteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["text"]
        try:
            entries = importing.read(text, allow_loader_names=group.organization.allow_loader_names)
        except importing.ImportRefused as refused:
            context["problems"] = refused.problems
        else:
            if request.POST.get("step") == "import":
                names = {e.name for e in entries}
                chosen = set(request.POST.getlist("secret")) & names
                outcomes = importing.variables_import(
                    group=group, entries=entries, secret=chosen, source=SOURCE
                )
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
            context["rows"] = _review(group, entries)
            context["hidden_text"] = forms.Textarea(attrs={"hidden": True}).render("text", text)
    context["form"] = form
    request.current_app = model_admin.admin_site.name
    response = TemplateResponse(request, "admin/orgenv/variablegroup/paste.html", context)
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
