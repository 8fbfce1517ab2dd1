"""Saving with an impact preview: a save that changes what projects receive is shown first.

Saving a group's page, a project's page, or pasting .env into a group runs the save for real
inside a transaction, loads the organization before the first write and after the last one
(orgenv.selectors.reach), and compares the two resolutions (orgenv.resolution.impact):

- no project's environment changes: the transaction commits, as a plain save would, and the
  success message says so;
- otherwise it rolls back — no row, history row, log entry or audit event survives — and the
  preview page shows "This change affects N projects" with the difference per project.

Confirm replays the posted form through the very same save. It commits only if the
organization's generation (replaced by database triggers with every write that can change a
resolution, migration 0006) is still the one read before the previewed save, under a lock on
the organization's row, and the difference is the one shown; otherwise the new difference is
shown instead and nothing is saved. Back renders the form again with what was posted
(secret boxes stay empty: they never render a value).

What was posted stays on the server: in the session (kept in the database), encrypted with
the key ring of orgenv.crypto, under a random preview id. The preview page and Confirm carry
only that id. An entry is used once, belongs to the user and the page it was made on, and
expires after PREVIEW_LIFETIME seconds (the Fernet token's own timestamp decides).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from django.contrib import messages
from django.contrib.messages.storage.base import BaseStorage
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.utils.html import format_html

from orgenv import access, crypto
from orgenv.models import Organization
from orgenv.resolution.impact import Impact, conflict_detail, difference, resolve_world
from orgenv.selectors.reach import load_world, opened

# Posted by the preview page: its id, and which button (Confirm, or Back to the form).
PREVIEW_ID, CONFIRM, BACK = "_impact_id", "_impact_confirm", "_impact_back"
SESSION_KEY = "orgenv_pending_saves"
PREVIEW_LIFETIME = 10 * 60  # seconds
KEPT = 5  # pending previews per session: older ones go first
# Posted fields that are not the form's: never kept, never replayed.
NOT_KEPT = ("csrfmiddlewaretoken", PREVIEW_ID, CONFIRM, BACK)
_RUN = "_orgenv_impact_run"
_SHOW_FORM = "_orgenv_show_form"

REFUSED = (
    "This preview has expired, was already used, or belongs to another page or user: nothing "
    "was saved. Make the change again."
)
BACK_NOTE = (
    "Not saved. Your changes are back in the form, except secret values, which are never "
    "shown: type them again."
)


class PreviewNeeded(Exception):
    """Raised at the end of a measured save whose difference must be shown first: it rolls
    the save back on its way out of the transaction."""

    def __init__(self, impact: Impact, fingerprint: str, changed: bool) -> None:
        super().__init__("impact preview")
        self.impact = impact
        self.fingerprint = fingerprint
        self.changed = changed


def fingerprint_of(impact: Impact) -> str:
    """What Confirm compares: the plan as shown (secret values never in it)."""
    return hashlib.sha256("\n".join(impact.lines()).encode()).hexdigest()


@dataclass
class ImpactRun:
    """One save, measured: `begin` before its first write, `end` after its last one.

    Previewing (expected None): end() commits a save that changes no environment and raises
    PreviewNeeded otherwise. Confirming: end() commits when the difference is the previewed
    one and the data had not changed (`changed` False), else raises PreviewNeeded again."""

    expected: str | None = None
    changed: bool = False
    organization_id: int | None = None
    generation: int | None = None
    impact: Impact | None = None
    _before: dict | None = None

    def begin(self, organization_id: int | None) -> None:
        if self._before is not None:
            return
        if organization_id is None or (
            self.organization_id is not None and organization_id != self.organization_id
        ):
            raise PermissionDenied("This preview was made for another organization.")
        organization = Organization.objects.only("pk", "generation").get(pk=organization_id)
        self.organization_id, self.generation = organization.pk, organization.generation
        self._before = resolve_world(opened(load_world(organization)))

    def end(self) -> None:
        if self._before is None:
            raise RuntimeError("ImpactRun.end() without begin(): the save was not measured")
        after = resolve_world(
            opened(load_world(Organization(pk=self.organization_id)), committed=False)
        )
        self.impact = difference(self._before, after)
        shown = fingerprint_of(self.impact)
        confirmed = self.expected is not None and shown == self.expected and not self.changed
        if confirmed or (self.expected is None and not self.impact):
            return
        raise PreviewNeeded(self.impact, shown, changed=self.expected is not None)

    @property
    def ended(self) -> bool:
        return self.impact is not None


def current_run(request: HttpRequest) -> ImpactRun | None:
    """The measured save in progress for this request, if any (for the admins' hooks)."""
    return getattr(request, _RUN, None)


# --- what was posted, kept encrypted in the session --------------------------------------


@dataclass(frozen=True)
class Pending:
    data: QueryDict
    organization_id: int
    generation: int
    fingerprint: str


def keep(request: HttpRequest, *, target: str, run: ImpactRun, fingerprint: str) -> str:
    """Keep the posted form for Confirm or Back; returns the preview id."""
    payload = {
        "user": request.user.pk,
        "target": target,
        "organization": run.organization_id,
        "generation": run.generation,
        "fingerprint": fingerprint,
        "data": [[k, v] for k, v in request.POST.lists() if k not in NOT_KEPT],
    }
    token = crypto.key_ring().encrypt(json.dumps(payload).encode()).decode("ascii")
    pending = dict(request.session.get(SESSION_KEY, {}))
    preview_id = secrets.token_urlsafe(18)
    pending[preview_id] = token
    request.session[SESSION_KEY] = dict(list(pending.items())[-KEPT:])
    return preview_id


def take(request: HttpRequest, preview_id: str, *, target: str) -> Pending | None:
    """The kept form of `preview_id`, removed from the session whatever the answer; None
    when it is unknown, expired, another user's, or made on another page."""
    pending = dict(request.session.get(SESSION_KEY, {}))
    token = pending.pop(preview_id, None)
    request.session[SESSION_KEY] = pending
    if token is None:
        return None
    try:
        plain = crypto.key_ring().decrypt(token.encode("ascii"), ttl=PREVIEW_LIFETIME)
    except InvalidToken:
        return None  # expired (or from a key ring that no longer opens it)
    payload = json.loads(plain)
    if payload["user"] != request.user.pk or payload["target"] != target:
        return None
    data = QueryDict(mutable=True)
    for key, values in payload["data"]:
        data.setlist(key, values)
    data._mutable = False
    return Pending(data, payload["organization"], payload["generation"], payload["fingerprint"])


# --- the flow --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactRow:
    project: str
    name: str
    kind: str
    detail: str
    secret: bool = False


@dataclass(frozen=True)
class Preview:
    impact: Impact
    preview_id: str
    changed: bool  # shown again: the data changed since the last preview

    @property
    def projects(self) -> list[tuple[str, list[ImpactRow]]]:
        return impact_rows(self.impact)


def impact_rows(impact: Impact, *, values: bool = True) -> list[tuple[str, list[ImpactRow]]]:
    """(project, rows) in the impact's order: one row per variable or conflict (values=False:
    no value shown, not even a public one)."""
    out = []
    for project in impact.projects:
        rows = [
            ImpactRow(project.project, v.name, v.kind, v.detail(values=values), v.secret)
            for v in project.variables
        ]
        rows += [
            ImpactRow(project.project, c.name, "conflict appears", conflict_detail(c))
            for c in project.conflicts_appearing
        ]
        rows += [
            ImpactRow(project.project, c.name, "conflict disappears", conflict_detail(c))
            for c in project.conflicts_disappearing
        ]
        out.append((project.project, rows))
    return out


def locked_generation(organization_id: int) -> int | None:
    """The organization's generation, its row locked until the caller's transaction ends:
    no other write to the organization can slip in between a check of it and the write
    that follows; None when the organization is gone."""
    return (
        Organization.objects.select_for_update()
        .filter(pk=organization_id)
        .values_list("generation", flat=True)
        .first()
    )


class _Captured(BaseStorage):
    """Messages of a save that may be rolled back: held until the save is kept."""

    def _get(self, *args: Any, **kwargs: Any) -> tuple[list, bool]:
        return [], True

    def _store(self, messages: list, response: Any, *args: Any, **kwargs: Any) -> list:
        return []


def answers_a_preview(request: HttpRequest) -> bool:
    """Whether the POST comes from a preview page's Confirm or Back."""
    return CONFIRM in request.POST or BACK in request.POST


def save_with_preview(
    request: HttpRequest,
    *,
    target: str,
    save: Callable[[], HttpResponse],
    show_preview: Callable[[Preview], HttpResponse],
    show_form: Callable[[], HttpResponse],
    back_note: str = BACK_NOTE,
) -> HttpResponse:
    """Run a POST's save measured (see the module docstring). `save` performs it and must
    call `begin` and `end` of current_run(request) around its writes; `target` names the
    page and object (a pending entry is good only there); `show_form` renders the page the
    save was posted from, again, from request.POST."""
    if not answers_a_preview(request):
        return _measured(request, ImpactRun(), target, save, show_preview)
    back = BACK in request.POST
    pending = take(request, request.POST.get(PREVIEW_ID, ""), target=target)
    if pending is None:
        messages.error(request, REFUSED)
        return HttpResponseRedirect(request.get_full_path())
    request.POST = pending.data
    if back:
        messages.info(request, back_note)
        return show_form()
    with transaction.atomic():
        generation = locked_generation(pending.organization_id)  # until the save commits
        run = ImpactRun(
            expected=pending.fingerprint,
            changed=generation != pending.generation,
            organization_id=pending.organization_id,
        )
        return _measured(request, run, target, save, show_preview)


def _measured(
    request: HttpRequest,
    run: ImpactRun,
    target: str,
    save: Callable[[], HttpResponse],
    show_preview: Callable[[Preview], HttpResponse],
) -> HttpResponse:
    real = request._messages
    captured = _Captured(request)
    request._messages = captured
    setattr(request, _RUN, run)
    try:
        with transaction.atomic():
            response = save()
            if not run.ended:
                # Not saved (a form with errors, a refused grant): whatever it wrote goes.
                transaction.set_rollback(True)
    except PreviewNeeded as needed:
        preview_id = keep(request, target=target, run=run, fingerprint=needed.fingerprint)
        return show_preview(Preview(needed.impact, preview_id, needed.changed))
    finally:
        request._messages = real
        delattr(request, _RUN)
    _replay(captured, real, _outcome(run.impact) if run.ended else None)
    return response


def _outcome(impact: Impact) -> str:
    if not impact:
        return "It affects no project's environment, so it was saved without a preview."
    n = impact.count
    return f"It changed the environment of {n} project{'' if n == 1 else 's'}, as previewed."


def _replay(captured: _Captured, real: BaseStorage, note: str | None) -> None:
    """The messages of a kept save, the success message completed with its impact."""
    for message in captured._queued_messages:
        text = message.message
        if note and message.level == messages.SUCCESS:
            text, note = format_html("{} {}", text, note), None
        real.add(message.level, text, message.extra_tags)


# --- the admins of groups and projects --------------------------------------------------


class PreviewsImpact:
    """For a model admin whose change page writes what projects receive (groups, projects):
    its saves go through save_with_preview (deletions: orgenv.admin.deleting). Place it first
    among the bases."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        parent = super()

        def save() -> HttpResponse:
            return parent.changeform_view(request, object_id, form_url, extra_context)

        if request.method != "POST" or not self._may_save(request, object_id):
            return save()  # a page to show, or the admin's own refusal

        def show_form() -> HttpResponse:
            setattr(request, _SHOW_FORM, True)
            return save()

        def show_preview(preview: Preview) -> HttpResponse:
            return self.render_impact_preview(request, object_id, preview)

        target = f"{self.opts.label_lower}:{object_id or 'add'}"
        return save_with_preview(
            request, target=target, save=save, show_preview=show_preview, show_form=show_form
        )

    def _may_save(self, request: HttpRequest, object_id: str | None) -> bool:
        if object_id is None:
            return self.has_add_permission(request)
        obj = self.get_object(request, object_id)
        return obj is not None and self.has_change_permission(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if getattr(request, _SHOW_FORM, False):
            # Back: the admin renders a bound form that does not validate, and saves nothing.
            return type(form.__name__, (form,), {"is_valid": _shown_again})
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        run = current_run(request)
        if run is not None:
            run.begin(access.organization_of(obj))
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: Any, *args: Any) -> HttpResponse:
        _end(request)
        return super().response_add(request, obj, *args)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        _end(request)
        return super().response_change(request, obj)

    def render_impact_preview(
        self, request: HttpRequest, object_id: str | None, preview: Preview
    ) -> HttpResponse:
        obj = self.get_object(request, object_id) if object_id else None
        context = {
            **self.admin_site.each_context(request),
            **self.workspace_frame(request, object_id),
            "title": "Review this change",
            "subtitle": str(obj) if obj else f"new {self.opts.verbose_name}",
            "opts": self.opts,
            "original": obj,
            "add": obj is None,
            "preview": preview,
            "form_url": request.get_full_path(),
            "discard_url": request.get_full_path(),
        }
        return render_preview(request, context, self.admin_site.name)


def _shown_again(form: Any) -> bool:
    form.errors  # noqa: B018 - cleans the form, as is_valid() would, to show it again
    return False


def _end(request: HttpRequest) -> None:
    run = current_run(request)
    if run is not None:
        run.end()


def render_preview(request: HttpRequest, context: dict[str, Any], site: str) -> HttpResponse:
    """The preview page; `context` has the admin's, the workspace frame, `preview`, and
    `form_url` (where Confirm and Back post)."""
    request.current_app = site
    response = TemplateResponse(request, "admin/orgenv/impact_preview.html", context)
    response["Cache-Control"] = "no-store"
    return response
