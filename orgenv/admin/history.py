"""simple-history's admin, with values censored (orgenv.audit.censor) and tenancy enforced.

SimpleHistoryAdmin shows three things that could carry a value: the "Changes" column of
the history page, extra `history_list_display` columns, and the historical-version form
(the "revert" view). Here the first shows "value changed", the second refuses censored
fields, and the third is replaced by a read-only page that shows the mask.

History is for reading: there is no Revert (a form POST gets 403). Reverting would put an
old secret back into a form, which is exactly the leak we avoid (`resolve_env --as-of` is
the audited way to read an old value), and simple-history's revert would not restore grants:
it saves the instance and the form's many-to-many selections, which are the current ones.
A group's or a project's version offers "Restore this version" instead: the restore service
(orgenv.services.restore) moves stored values without showing them, grants included, after a
preview of its impact. The past version's page reads its grants from the
snapshot simple-history stores with every history row instead.

The history of a deleted object is not in the admin's (scoped) queryset, so
simple-history falls back to the latest history row; we check that row's organization
against orgenv.access before showing anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_field, flatten_fieldsets, unquote
from django.core.exceptions import (
    FieldDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import ModelChange
from simple_history.template_utils import HistoricalRecordContextHelper

from orgenv import access
from orgenv.audit.censor import CENSORED, MASK, censored_fields
from orgenv.models import Project, VariableGroup
from orgenv.selectors.as_of import AsOfError
from orgenv.services.restore import RestoreError, plan_group, plan_project, restore_apply

# Past versions that "Restore this version" can bring back (orgenv.services.restore).
RESTORABLE = (VariableGroup, Project)


class CensoredRecordContextHelper(HistoricalRecordContextHelper):
    def context_for_delta_changes(self, delta: Any) -> list[dict[str, Any]]:
        hidden = censored_fields(self.model)
        context = super().context_for_delta_changes(delta)
        for change, item in zip(delta.changes, context, strict=True):
            item["censored"] = change.field in hidden
        return context

    def format_delta_change(self, change: ModelChange) -> ModelChange:
        if change.field in censored_fields(self.model):
            field_meta = self.model._meta.get_field(change.field)
            return dataclasses.replace(
                change, field=str(field_meta.verbose_name).capitalize(), old=MASK, new=CENSORED
            )
        return super().format_delta_change(change)


class CensoredHistoryAdmin(SimpleHistoryAdmin):
    object_history_list_template = "audit/admin_history_list.html"

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return CensoredRecordContextHelper(self.model, historical_record)

    def get_history_list_display(self, request: HttpRequest) -> Sequence[str]:
        hidden = censored_fields(self.model)
        names = [
            "acted_by" if name == "history_actor" else name
            for name in super().get_history_list_display(request)
            if name not in hidden
        ]
        return names if "acted_by" in names else [*names, "acted_by"]

    def _check_scope(self, request: HttpRequest, obj: Any) -> None:
        if request.user.is_superuser:
            return
        org_id = access.organization_of(obj)
        if org_id is None or not access.is_org_admin(request.user, org_id):
            raise Http404

    def _scoped_object(self, request: HttpRequest, object_id: str) -> Any:
        """The live object, or for a deleted one its last historical state, if the user
        administers its organization; 404 otherwise (same rule as the member pages)."""
        pk_name = self.model._meta.pk.attname
        try:
            obj = self.get_queryset(request).filter(**{pk_name: unquote(object_id)}).first()
            if obj is None:
                last = (
                    self.model.history.filter(**{pk_name: unquote(object_id)})
                    .order_by("-history_date", "-history_id")
                    .first()
                )
                obj = last.instance if last is not None else None
        except (ValueError, ValidationError):
            obj = None
        if obj is None:
            raise Http404
        self._check_scope(request, obj)
        return obj

    @admin.display(description="Acted as/by")
    def acted_by(self, record: Any) -> str:
        """Who acted: the recorded actor (a username, token:<prefix> or system:<command>),
        else the signed-in user; simple-history's own "Changed by" column would read
        "None" for every command and runner change."""
        if record.history_actor:
            return record.history_actor
        user = getattr(record, "history_user", None)
        return user.get_username() if user is not None else "—"

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        self._scoped_object(request, object_id)
        columns = [
            (name, self._column_label(name)) for name in self.get_history_list_display(request)
        ]
        context = {"history_columns": columns, **(extra_context or {})}
        return super().history_view(request, object_id, context)

    def _column_label(self, name: str) -> str:
        method = getattr(self, name, None)
        if callable(method):
            return str(getattr(method, "short_description", name.replace("_", " ")))
        try:
            return str(self.model.history.model._meta.get_field(name).verbose_name)
        except FieldDoesNotExist:
            return name.replace("_", " ")

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        # History is for reading: a revert would put back old values (see above) and,
        # through simple-history, would not put back the grants (many-to-many) at all.
        return True

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """One past version, read-only: its fields as recorded (values masked) and its
        many-to-many links as they were in that version, from simple-history's snapshot."""
        live = self._scoped_object(request, object_id)
        restoring = request.method == "POST" and request.POST.get("_restore") in (
            "preview",
            "confirm",
        )
        if request.method not in ("GET", "HEAD") and not (
            restoring and isinstance(live, RESTORABLE) and self.has_change_permission(request, live)
        ):
            raise PermissionDenied(
                "History is read-only: a past version is restored with Restore this version."
            )
        if not self.has_view_history_or_change_history_permission(request, live):
            raise PermissionDenied
        pk_name = self.model._meta.pk.attname
        try:
            record = self.model.history.get(
                **{pk_name: unquote(object_id), "history_id": unquote(version_id)}
            )
        except (self.model.history.model.DoesNotExist, ValueError, ValidationError):
            raise Http404 from None
        opts = self.model._meta
        pk = unquote(object_id)
        prefix = f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}"
        exists = self.get_queryset(request).filter(pk=pk).exists()  # not when deleted
        rows = version_rows(record, self._shown_fields(request, live))
        restore = None
        if exists and isinstance(live, RESTORABLE) and self.has_change_permission(request, live):
            restore = self._restore(request, live, record)
            if isinstance(restore, HttpResponse):
                return restore
        context = {
            **self.admin_site.each_context(request),
            "title": f"{opts.verbose_name.capitalize()} {record.history_object} as of "
            f"{record.history_date:%Y-%m-%d %H:%M:%S} UTC",
            "opts": opts,
            "original": record.history_object,
            "record": record,
            "actor": self.acted_by(record),
            "rows": rows,
            "links": [label for label, _ in rows if label in self._link_labels()],
            "changelist_url": reverse(f"{prefix}_changelist"),
            "change_url": reverse(f"{prefix}_change", args=(pk,)) if exists else None,
            "history_url": reverse(f"{prefix}_history", args=(pk,)),
            "restore": restore,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "audit/admin_history_form.html", context)

    def _restore(self, request: HttpRequest, live: Any, record: Any) -> dict | HttpResponse:
        """Restore this version: a preview first (what changes, and the impact on every
        project), then Confirm, which restores exactly the plan it was shown: if the data
        changed in between, the plan differs from its fingerprint and is shown again."""
        action = request.POST.get("_restore") if request.method == "POST" else None
        try:
            if isinstance(live, VariableGroup):
                plan = plan_group(live.organization, record.name, record.history_date)
            else:
                plan = plan_project(live, record.history_date)
        except (RestoreError, AsOfError) as error:
            return {"error": str(error)} if action else {}
        shown = "\n".join([*plan.steps, *plan.impact.lines()])
        fingerprint = hashlib.sha256(shown.encode()).hexdigest()
        if action == "confirm" and request.POST.get("fingerprint") == fingerprint:
            if plan.steps:
                try:
                    restore_apply(plan=plan)
                except ValidationError as error:
                    return {"error": " ".join(error.messages)}
                self.message_user(
                    request,
                    f"{plan.label} restored to {record.history_date:%Y-%m-%d %H:%M:%S} UTC. "
                    f"{plan.impact.headline() if plan.impact else ''}",
                )
            return HttpResponseRedirect(request.path)
        return {
            "preview": bool(action),
            "changed": action == "confirm",
            "plan": plan,
            "fingerprint": fingerprint,
        }

    def _link_labels(self) -> set[str]:
        return {_label(f) for f in getattr(self.model.history.model, "_history_m2m_fields", [])}

    def _shown_fields(self, request: HttpRequest, obj: Any) -> list[str]:
        """The fields the change page shows, in its order; inlines are separate objects
        with their own history."""
        return list(flatten_fieldsets(self.get_fieldsets(request, obj)))


def version_rows(record: Any, names: Sequence[str]) -> list[tuple[str, Any]]:
    """(label, text) for each field of one historical version. A value is masked; a
    many-to-many field lists its links as recorded with that version; a field history
    does not keep (a token's last use) is left out."""
    history_model = type(record)
    model = history_model.instance_type
    hidden = censored_fields(model)
    m2m = {f.name: f for f in getattr(history_model, "_history_m2m_fields", [])}
    rows: list[tuple[str, Any]] = []
    for name in names:
        if not isinstance(name, str):
            continue
        if name in m2m:
            field = m2m[name]
            rows.append((_label(field), _links_as_of(record, field)))
            continue
        try:
            field = history_model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.name in hidden:
            rows.append((_label(field), MASK))
        elif field.is_relation:
            rows.append((_label(field), _related_as_of(record, field)))
        else:
            # display_for_field: choice labels, dates as the admin shows them
            rows.append(
                (_label(field), display_for_field(getattr(record, field.attname), field, "—"))
            )
    return rows


def _label(field: Any) -> str:
    return str(field.verbose_name).capitalize()


def _related_as_of(record: Any, field: Any) -> str:
    pk = getattr(record, field.attname)
    if pk is None:
        return "—"
    return _names_as_of(field.related_model, [pk], record.history_date).get(pk, f"#{pk}")


def _links_as_of(record: Any, field: Any) -> str:
    """The targets of a many-to-many field in this version (simple-history writes a full
    snapshot of the links with every history row), named as they were then."""
    target = field.related_model
    column = f"{target._meta.model_name}_id"
    if column == f"{record.instance_type._meta.model_name}_id":  # a self-relation
        column = f"to_{column}"
    ids = list(getattr(record, field.name).values_list(column, flat=True))
    if not ids:
        return "—"
    names = _names_as_of(target, ids, record.history_date)
    return ", ".join(sorted(names.get(pk, f"#{pk} (deleted)") for pk in ids))


def _names_as_of(model: Any, ids: list[int], when: Any) -> dict[int, str]:
    """Names of objects at a moment: from their history when they have one (a renamed or
    deleted project keeps its name of the time), else from the live table."""
    history = getattr(model, "history", None)
    if history is None:
        return {obj.pk: str(obj) for obj in model._default_manager.filter(pk__in=ids)}
    names: dict[int, str] = {}
    versions = history.filter(id__in=ids, history_date__lte=when).order_by(
        "history_date", "history_id"
    )
    for version in versions:
        names[version.id] = str(version.instance)  # the latest one at that moment wins
    return names
