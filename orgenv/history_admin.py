"""simple-history's admin, with values censored (orgenv.censor) and tenancy enforced.

SimpleHistoryAdmin shows three things that could carry a value: the "Changes" column of
the history page, extra `history_list_display` columns, and the historical-version form
(the "revert" view). Here the first shows "value changed", the second refuses censored
fields, and the third shows the mask and is read-only for models with censored fields:
reverting would mean putting an old secret back into a form, which is exactly the leak we
avoid (`resolve_env --as-of` is the audited way to read an old value).

The history of a deleted object is not in the admin's (scoped) queryset, so
simple-history falls back to the latest history row; we check that row's organization
against orgenv.access before showing anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from django.contrib.admin.utils import unquote
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import ModelChange
from simple_history.template_utils import HistoricalRecordContextHelper

from . import access
from .censor import CENSORED, MASK, censored_fields

_HISTORY_FORM_FLAG = "_orgenv_history_form"


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


def organization_id_of(obj: Any) -> int | None:
    """The organization an instance belongs to, following orgenv.access's paths; None when
    the chain is broken (a parent deleted too)."""
    path = access.ORGANIZATION_PATH.get(type(obj))
    if path is None:
        return None
    if path == "pk":
        return obj.pk
    *parents, last = path.split("__")
    current = obj
    try:
        for name in parents:
            current = getattr(current, name)
    except ObjectDoesNotExist:
        return None
    return getattr(current, f"{last}_id", None)


class CensoredHistoryAdmin(SimpleHistoryAdmin):
    object_history_list_template = "audit/admin_history_list.html"

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return CensoredRecordContextHelper(self.model, historical_record)

    def get_history_list_display(self, request: HttpRequest) -> Sequence[str]:
        hidden = censored_fields(self.model)
        return [name for name in super().get_history_list_display(request) if name not in hidden]

    def _check_scope(self, request: HttpRequest, obj: Any) -> None:
        if request.user.is_superuser:
            return
        org_id = organization_id_of(obj)
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

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        self._scoped_object(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        if censored_fields(self.model):
            return True
        return super().revert_disabled(request, obj)

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict | None = None,
    ) -> HttpResponse:
        if censored_fields(self.model) and request.method == "POST":
            raise PermissionDenied("Reverting to a past version is disabled for values.")
        self._scoped_object(request, object_id)
        setattr(request, _HISTORY_FORM_FLAG, True)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is not None and getattr(request, _HISTORY_FORM_FLAG, False):
            # The historical-version form is built from this very instance: mask its
            # values before any widget or read-only field can render them.
            for name in censored_fields(self.model):
                setattr(obj, name, MASK)
        return super().get_form(request, obj, change=change, **kwargs)
