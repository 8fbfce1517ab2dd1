"""The Change requests tab and a request's page: its diff in names, its impact on every project
(no value, public or secret), its approvals, and the actions the reader may take — approve,
reject with a comment, withdraw, update, break glass (orgenv.changes.services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from orgenv.changes import services
from orgenv.changes.state import group_version
from orgenv.changes.writing import preview
from orgenv.models import Approval, ChangeRequest

from .previewing import impact_rows
from .workspace import workspace_context, workspace_organization

PAGE_SIZE = 50  # closed requests per page of the tab


def _workspace(request: HttpRequest, org_slug: str, title: str) -> tuple[Any, dict]:
    organization = workspace_organization(request, org_slug)
    return organization, workspace_context(request, organization, "requests", title)


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    request.current_app = admin.site.name
    response = TemplateResponse(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


def requests_tab(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Open requests (all of them: a handful at most, each a week long at most), then the
    closed ones, newest first, paged by (created_at, id)."""
    organization, context = _workspace(request, org_slug, "Change requests")
    ours = ChangeRequest.objects.filter(organization=organization).select_related("group")
    open_ = list(ours.open().order_by("-created_at", "-id"))
    closed = ours.exclude(pk__in=[r.pk for r in open_]).order_by("-created_at", "-id")
    before = request.GET.get("before", "")
    at, _, pk = before.partition("_")
    when = parse_datetime(at) if at else None
    if when is not None and pk.isdigit():
        closed = closed.filter(created_at__lte=when).exclude(created_at=when, id__gte=int(pk))
    page = list(closed[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    approvals = _approval_counts([r.pk for r in open_])
    context.update(
        open_requests=[(r, approvals.get(r.pk, 0)) for r in open_],
        closed_requests=page,
        next_page=f"{page[-1].created_at.isoformat()}_{page[-1].pk}" if more else "",
        paged=bool(before),
    )
    return _render(request, "admin/orgenv/workspace/change_requests.html", context)


def _approval_counts(ids: list[int]) -> dict[int, int]:
    rows = Approval.objects.filter(request_id__in=ids).values("request_id").annotate(n=Count("id"))
    return {row["request_id"]: row["n"] for row in rows}


ACTIONS = {"approve", "reject", "withdraw", "update", "force"}


def request_page(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    organization, context = _workspace(request, org_slug, f"Change request #{pk}")
    change = get_object_or_404(
        ChangeRequest.objects.select_related("group", "organization"),
        pk=pk,
        organization=organization,
    )
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            raise Http404("No such action.")
        try:
            _act(request, change, action)
        except services.Refused as refused:
            context["refusal"] = str(refused)
            status = 409
        else:
            return HttpResponseRedirect(request.path)
        change.refresh_from_db()
    context.update(_page_context(request, change))
    return _render(request, "admin/orgenv/workspace/change_request.html", context, status)


def _act(request: HttpRequest, change: ChangeRequest, action: str) -> None:
    user, post = request.user, request.POST
    if action == "approve":
        done = services.request_approve(request=change, user=user)
        if done.status == ChangeRequest.Status.APPLIED:
            messages.success(request, f"Approved and applied to {done.group_name}.")
        else:
            messages.success(request, "Approved: it needs more approvals before it applies.")
    elif action == "reject":
        services.request_reject(request=change, user=user, comment=post.get("comment", ""))
        messages.success(request, "Rejected: the author is told, with your comment.")
    elif action == "withdraw":
        services.request_withdraw(request=change, user=user)
        messages.success(request, "Withdrawn: nothing was changed.")
    elif action == "update":
        services.request_update(request=change, user=user)
        messages.success(
            request, "Updated to the group as it is now: the approvals given start again."
        )
    else:
        services.request_force(request=change, user=user, reason=post.get("reason", ""))
        messages.warning(
            request, f"Applied to {change.group_name} at once (break glass): every admin is told."
        )


def _page_context(request: HttpRequest, change: ChangeRequest) -> dict[str, Any]:
    user = request.user
    open_ = change.is_open
    stale = open_ and services.is_stale(change)
    impact = None
    if open_ and not stale:
        impact = preview(change)
    approvals = list(change.approvals.all())
    required = change.group.required_approvals if change.group else None
    return {
        "change": change,
        "status": change.shown_status,
        "is_open": open_,
        "stale": stale,
        "stale_reason": services.STALE.format(
            group=change.group_name,
            base=change.base_version,
            now=group_version(change.group_id) if change.group_id else "—",
        )
        if stale
        else "",
        "impact": impact,
        "impact_projects": impact_rows(impact, values=False) if impact else [],
        "approvals": approvals,
        "required": required,
        "is_author": change.author_id == user.pk,
        "approved_by_me": any(a.user_id == user.pk for a in approvals),
        "group_url": reverse("admin:orgenv_variablegroup_change", args=(change.group_id,))
        if change.group_id
        else "",
    }
