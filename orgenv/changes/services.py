"""Change requests' writes: open (or replace), approve, reject, withdraw, update, force, expire,
and the apply that approval and break glass share. Each runs in one transaction with the
organization's row and then the request's locked, so that two admins approving at once apply
a request once; every outcome is audited and notified (orgenv.notifications) in the same
transaction, never with a value."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orgenv import access
from orgenv.actors import acting_as
from orgenv.audit import events as audit
from orgenv.models import (
    Approval,
    AuditEvent,
    ChangeRequest,
    Organization,
    ProposedVariable,
    VariableGroup,
)
from orgenv.notifications import ADMINS, events, notify

from .models import LIFETIME
from .state import Delta, Snapshot, delta, group_version, proposed, snapshot
from .writing import measure, write

Status = ChangeRequest.Status
REASON_MAX = 100  # history_change_reason's length


class Refused(Exception):
    """An action on a request that cannot be taken; the message says why, for the user."""


SELF_APPROVAL = (
    "You opened this request, so you cannot approve it: another org admin must. In an "
    "emergency, apply it yourself with Break glass (it is audited and every admin is told)."
)
NOT_OPEN = "This request is {status}: nothing more can be done with it."
STALE = (
    "The group {group} changed after this request was made (version {base}, now {now}), so "
    "it cannot be approved or applied: its author updates it to the group as it is now."
)
GONE = "The group {group} no longer exists: this request cannot be applied."


def link(request: ChangeRequest) -> str:
    return reverse("admin:orgenv_change_request", args=(request.organization.slug, request.pk))


def _notify(request: ChangeRequest, event: str, email_to: Any, **data: Any) -> None:
    notify(
        event,
        organization=request.organization,
        data={
            "group": request.group_name,
            "change_request": request.pk,
            "names": sorted({row[1] for row in request.diff if row[0] == "variable"}),
            "version": request.base_version,
            **data,
        },
        link=link(request),
        email_to=email_to,
    )


def _audit(event: str, request: ChangeRequest, **detail: Any) -> None:
    audit.record(
        event,
        organization=request.organization,
        group=request.group,
        detail={"change_request": request.pk, "group": request.group_name, **detail},
    )


def _other_admins(request: ChangeRequest) -> list[int]:
    admins = access.organization_admins(request.organization_id).exclude(pk=request.author_id)
    return list(admins.values_list("pk", flat=True))


# --- opening --------------------------------------------------------------------------


@transaction.atomic
def request_open(
    *,
    group: VariableGroup,
    author: Any,
    before: Snapshot | None,
    after: Snapshot | None,
    version: str,
    comment: str = "",
) -> tuple[ChangeRequest | None, bool]:
    """Open a request for the change from `before` to `after` (after None: the group's
    deletion), made against `version`. The author's open request for the same group, if
    any, is replaced (its approvals dropped). Returns (request, replaced); (None, False)
    when the change changes nothing."""
    kind = ChangeRequest.Kind.CHANGE if after is not None else ChangeRequest.Kind.DELETION
    change = delta(before, after) if after is not None else Delta()
    if after is not None and not change:
        return None, False
    request = (
        ChangeRequest.objects.open().select_for_update().filter(group=group, author=author).first()
    )
    replaced = request is not None
    now = timezone.now()
    if request is None:
        request = ChangeRequest(
            organization=group.organization, group=group, author=author, created_at=now
        )
    else:
        request.approvals.all().delete()
        request.variables.all().delete()
    request.author_name = author.get_username()
    request.group_name = group.name
    request.kind = kind
    request.comment = comment
    request.updated_at, request.expires_at = now, now + LIFETIME
    _fill(request, change, version)
    if kind == ChangeRequest.Kind.DELETION:
        request.diff = [["group", group.name, "deleted"]] + [
            ["variable", name, "removed"] for name in sorted(before.variables)
        ]
    request.save()
    _save_variables(request, change)
    _audit(AuditEvent.Kind.CHANGE_REQUESTED, request, kind=kind, replaced=replaced)
    _notify(request, events.CHANGE_REQUEST_OPENED, _other_admins(request) or None, kind=kind)
    return request, replaced


def _fill(request: ChangeRequest, change: Delta, version: str) -> None:
    request.base_version = version
    request.fields = change.fields
    request.projects_added, request.projects_removed = (
        change.projects_added,
        change.projects_removed,
    )
    request.teams_added, request.teams_removed = change.teams_added, change.teams_removed
    request.diff = change.diff


def _save_variables(request: ChangeRequest, change: Delta) -> None:
    # The tokens move as they are (Ciphertext): the proposed values are never decrypted here.
    ProposedVariable.objects.bulk_create(
        ProposedVariable(
            request=request,
            name=name,
            value=stored.token,
            is_secret=stored.is_secret,
            not_a_secret=stored.not_a_secret,
        )
        for name, stored in change.variables.items()
    )


# --- the actions ----------------------------------------------------------------------


def _locked(request: ChangeRequest) -> ChangeRequest:
    """The request again, its organization's row and then its own locked until the commit
    (the order every writer of the organization takes)."""
    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(pk=request.organization_id)
        .values_list("pk", flat=True)
    )
    return (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("organization", "group")
        .get(pk=request.pk)
    )


def _check_open(request: ChangeRequest) -> None:
    if not request.is_open:
        raise Refused(NOT_OPEN.format(status=request.shown_status))


def _check_current(request: ChangeRequest) -> None:
    if request.group is None:
        raise Refused(GONE.format(group=request.group_name))
    now = group_version(request.group_id)
    if now != request.base_version:
        raise Refused(STALE.format(group=request.group_name, base=request.base_version, now=now))


def _check_author(request: ChangeRequest, user: Any, action: str) -> None:
    if request.author_id != user.pk:
        raise Refused(f"Only the request's author, {request.author_name}, can {action} it.")


def is_stale(request: ChangeRequest) -> bool:
    return request.group_id is None or group_version(request.group_id) != request.base_version


@transaction.atomic
def request_approve(*, request: ChangeRequest, user: Any) -> ChangeRequest:
    """Approve as `user` (an org admin other than the author); applies the change when the
    approvals reach the group's required_approvals."""
    request = _locked(request)
    _check_open(request)
    if request.author_id == user.pk:
        raise Refused(SELF_APPROVAL)
    if request.approvals.filter(user=user).exists():
        raise Refused("You have already approved this request.")
    _check_current(request)
    Approval.objects.create(request=request, user=user, username=user.get_username())
    _audit(AuditEvent.Kind.CHANGE_APPROVED, request)
    approvers = list(request.approvals.values_list("username", flat=True))
    if len(approvers) >= request.group.required_approvals:
        _apply(request, approvers=approvers)
    return request


@transaction.atomic
def request_reject(*, request: ChangeRequest, user: Any, comment: str) -> ChangeRequest:
    comment = comment.strip()
    if not comment:
        raise Refused("Say why in the comment: the author reads it to rework the change.")
    request = _locked(request)
    _check_open(request)
    if request.author_id == user.pk:
        raise Refused("You opened this request: withdraw it instead of rejecting it.")
    _close(request, Status.REJECTED, user, comment)
    _audit(AuditEvent.Kind.CHANGE_REJECTED, request)
    _notify(request, events.CHANGE_REQUEST_REJECTED, [request.author_id], comment=comment)
    return request


@transaction.atomic
def request_withdraw(*, request: ChangeRequest, user: Any) -> ChangeRequest:
    request = _locked(request)
    _check_open(request)
    _check_author(request, user, "withdraw")
    _close(request, Status.WITHDRAWN, user)
    _audit(AuditEvent.Kind.CHANGE_WITHDRAWN, request)
    return request


@transaction.atomic
def request_update(*, request: ChangeRequest, user: Any) -> ChangeRequest:
    """Make the request against the group as it is now: what it proposes that the group
    already has drops out, the approvals given start again."""
    request = _locked(request)
    _check_open(request)
    _check_author(request, user, "update")
    if request.group is None:
        raise Refused(GONE.format(group=request.group_name))
    current = snapshot(request.group_id)
    version = group_version(request.group_id)
    if request.kind == ChangeRequest.Kind.CHANGE:
        change = delta(current, proposed(current, request))
        if not change:
            raise Refused(
                "The group already is as this request proposes: nothing is left to change. "
                "Withdraw it."
            )
        request.variables.all().delete()
        _fill(request, change, version)
        _save_variables(request, change)
    else:
        request.base_version = version
        request.diff = [["group", request.group_name, "deleted"]] + [
            ["variable", name, "removed"] for name in sorted(current.variables)
        ]
    request.approvals.all().delete()
    request.updated_at = timezone.now()
    request.expires_at = request.updated_at + LIFETIME
    request.save()
    _audit(AuditEvent.Kind.CHANGE_REQUESTED, request, kind=request.kind, updated=True)
    _notify(request, events.CHANGE_REQUEST_OPENED, _other_admins(request) or None, updated=True)
    return request


@transaction.atomic
def request_force(*, request: ChangeRequest, user: Any, reason: str) -> ChangeRequest:
    """Break glass: the author applies their own request at once, with a reason; audited as
    change_forced and every org admin is notified."""
    reason = reason.strip()
    if not reason:
        raise Refused("Give the reason for breaking glass: every org admin reads it.")
    request = _locked(request)
    _check_open(request)
    _check_author(request, user, "force")
    _check_current(request)
    request.forced = True
    request.close_comment = reason
    _apply(request, approvers=[], reason=reason)
    _audit(AuditEvent.Kind.CHANGE_FORCED, request, reason=reason, names=_names(request))
    _notify(
        request,
        events.CHANGE_FORCED,
        ADMINS,
        reason=reason,
        projects_affected=request.projects_affected,
    )
    return request


def expire_due() -> int:
    """Close the open requests past their expiry and tell their authors; returns how many."""
    expired = 0
    due = ChangeRequest.objects.filter(status=Status.OPEN, expires_at__lte=timezone.now())
    for pk, org in list(due.values_list("pk", "organization_id")[:500]):
        with transaction.atomic():
            request = _locked(ChangeRequest(pk=pk, organization_id=org))
            if request.status != Status.OPEN:
                continue
            request.status, request.closed_at, request.closed_by = (
                Status.EXPIRED,
                timezone.now(),
                "",
            )
            request.save()
            with acting_as("system:expire_change_requests"):
                _audit(AuditEvent.Kind.CHANGE_EXPIRED, request)
                _notify(request, events.CHANGE_REQUEST_EXPIRED, [request.author_id])
            expired += 1
    return expired


def _names(request: ChangeRequest) -> list[str]:
    return sorted({row[1] for row in request.diff if row[0] == "variable"})


def _close(request: ChangeRequest, status: str, user: Any, comment: str = "") -> None:
    request.status = status
    request.closed_at = timezone.now()
    request.closed_by = user.get_username()
    request.close_comment = comment or request.close_comment
    request.save()


# --- applying -------------------------------------------------------------------------


def _apply(request: ChangeRequest, *, approvers: list[str], reason: str = "") -> None:
    """Apply the request (in the caller's transaction, its rows locked): recorded as the
    author's change, its history rows naming the request and its approvers."""
    note = f"change request #{request.pk}: " + (
        f"approved by {', '.join(approvers)}" if approvers else f"break glass: {reason}"
    )
    group = VariableGroup.objects.select_for_update(of=("self",)).get(pk=request.group_id)
    try:
        with acting_as(request.author_name, request.author):
            impact = measure(request.organization, lambda: write(request, group, note[:REASON_MAX]))
    except ValidationError as error:
        # A guard refuses it now (a project relabelled since, say): nothing is applied.
        raise Refused(
            f"This change no longer applies as it is ({' '.join(error.messages)}): its author "
            "updates it or opens a new one."
        ) from None
    request.projects_affected = [p.project for p in impact.projects]
    if request.kind == ChangeRequest.Kind.DELETION:
        request.group = None  # deleted: the column is already null
    request.status = Status.APPLIED
    request.closed_at = timezone.now()
    request.closed_by = approvers[-1] if approvers else request.author_name
    request.save()
    if approvers:
        with acting_as(request.author_name, request.author):  # the author's change
            _audit(
                AuditEvent.Kind.CHANGE_APPLIED,
                request,
                approvers=approvers,
                names=_names(request),
                projects_affected=request.projects_affected,
            )
        _notify(
            request,
            events.CHANGE_REQUEST_APPROVED,
            [request.author_id] if request.author_id else None,
            approvers=approvers,
            projects_affected=request.projects_affected,
        )
