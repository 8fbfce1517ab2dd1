"""Writes about people. Keyword-only, validated, atomic; each one records an audit event.

An org admin never attaches an existing user directly: they invite a username, and the
invitation is the same whether or not such an account exists (no existence oracle). The
invited user accepts or declines on `/`. Operators (`apply_config`, superusers in the
organization page of the admin) still add members directly.

An organization admin needs staff status as well as the admin role (orgenv.access): giving
someone the admin role here -- by invitation or by a role change -- also gives them staff
status, so that the role does what its name says; it is recorded in the event. Taking the
role away leaves staff status alone: the user may administer another organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from orgenv.audit.events import record
from orgenv.models import AuditEvent, Invitation, Membership, Organization, Project, Team

Kind = AuditEvent.Kind
Role = Membership.Role

# An invitation not answered within this many days is no longer offered.
INVITATION_DAYS = 14


def _clean_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": "Username: type the username to invite."})
    if len(username) > 150:
        raise ValidationError({"username": "Username: at most 150 characters."})
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise ValidationError(
            {"username": "Username: letters, digits and @ . + - _ only, without spaces."}
        ) from None
    return username


def _clean_role(role: str) -> str:
    if role not in Role.values:
        raise ValidationError({"role": f"Role: choose one of {', '.join(Role.values)}."})
    return role


def _grant_staff_for(user: Any, role: str) -> bool:
    """Staff status goes with the admin role (see the module docstring)."""
    if role == Role.ADMIN and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        return True
    return False


def invitation_cutoff() -> Any:
    return timezone.now() - timedelta(days=INVITATION_DAYS)


@transaction.atomic
def invitation_send(
    *, organization: Organization, username: str, role: str, invited_by: Any
) -> Invitation:
    username = _clean_username(username)
    role = _clean_role(role)
    # Both questions are about this organization, which its admin already sees: no oracle.
    if Membership.objects.filter(organization=organization, user__username=username).exists():
        raise ValidationError({"username": f"{username} is already a member of {organization}."})
    pending = Invitation.objects.filter(
        organization=organization, username=username, status=Invitation.Status.PENDING
    )
    stale = pending.filter(created_at__lt=invitation_cutoff())
    stale.update(status=Invitation.Status.CANCELLED, answered_at=timezone.now())
    if pending.exists():
        raise ValidationError(
            {"username": f"{username} already has a pending invitation to {organization}."}
        )
    invitation = Invitation(
        organization=organization, username=username, role=role, invited_by=invited_by
    )
    invitation.full_clean()
    invitation.save()
    record(
        Kind.INVITATION_SENT,
        organization=organization,
        detail={"username": username, "role": role},
    )
    return invitation


@transaction.atomic
def invitation_cancel(*, invitation: Invitation) -> None:
    _answer(invitation, Invitation.Status.CANCELLED)
    record(
        Kind.INVITATION_CANCELLED,
        organization=invitation.organization,
        detail={"username": invitation.username, "role": invitation.role},
    )


def _answer(invitation: Invitation, status: str) -> None:
    # Locked, so that a double click cannot accept twice.
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if current.status != Invitation.Status.PENDING or current.created_at < invitation_cutoff():
        raise ValidationError("This invitation is no longer pending.")
    invitation.status = status
    invitation.answered_at = timezone.now()
    invitation.save(update_fields=["status", "answered_at"])


def _check_invitee(invitation: Invitation, user: Any) -> None:
    if invitation.username != user.get_username():
        raise ValidationError("This invitation is not yours.")


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: Any) -> Membership:
    _check_invitee(invitation, user)
    _answer(invitation, Invitation.Status.ACCEPTED)
    membership, created = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    staff = _grant_staff_for(user, membership.role)
    record(
        Kind.INVITATION_ACCEPTED,
        user=user,
        organization=invitation.organization,
        detail={"username": user.get_username(), "role": membership.role}
        | ({"staff_status_granted": True} if staff else {}),
    )
    return membership


@transaction.atomic
def invitation_decline(*, invitation: Invitation, user: Any) -> None:
    _check_invitee(invitation, user)
    _answer(invitation, Invitation.Status.DECLINED)
    record(
        Kind.INVITATION_DECLINED,
        user=user,
        organization=invitation.organization,
        detail={"username": user.get_username(), "role": invitation.role},
    )


def _keeps_an_admin(membership: Membership, *, new_role: str | None) -> None:
    if membership.role != Role.ADMIN or new_role == Role.ADMIN:
        return
    others = Membership.objects.filter(
        organization_id=membership.organization_id, role=Role.ADMIN
    ).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError(
            f"{membership.user} is the last admin of {membership.organization}: make someone "
            "else an admin first."
        )


@transaction.atomic
def member_role_change(*, membership: Membership, role: str) -> Membership:
    role = _clean_role(role)
    if role == membership.role:
        return membership
    _keeps_an_admin(membership, new_role=role)
    before = membership.role
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    staff = _grant_staff_for(membership.user, role)
    record(
        Kind.MEMBER_ROLE_CHANGED,
        organization=membership.organization,
        detail={"username": membership.user.get_username(), "from": before, "to": role}
        | ({"staff_status_granted": True} if staff else {}),
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership) -> None:
    """The membership goes, and with it the user's place in the organization's projects and
    teams: project access follows project and team membership (orgenv.access)."""
    _keeps_an_admin(membership, new_role=None)
    user, organization = membership.user, membership.organization
    projects = list(Project.objects.filter(organization=organization, members=user))
    teams = list(Team.objects.filter(organization=organization, members=user))
    for project in projects:
        project.members.remove(user)
    for team in teams:
        team.members.remove(user)
    membership.delete()
    record(
        Kind.MEMBER_REMOVED,
        organization=organization,
        detail={
            "username": user.get_username(),
            "projects": sorted(p.slug for p in projects),
            "teams": sorted(t.slug for t in teams),
        },
    )


@transaction.atomic
def member_unlock(*, membership: Membership) -> int:
    """Lift a sign-in lockout of a member (django-axes' reset for that username)."""
    from axes.utils import reset

    username = membership.user.get_username()
    cleared = reset(username=username)
    record(
        Kind.MEMBER_UNLOCKED,
        organization=membership.organization,
        detail={"username": username, "attempts_cleared": cleared},
    )
    return cleared


@dataclass(frozen=True)
class CreatedAccount:
    user: Any
    set_password_path: str  # shown once; works once, for PASSWORD_RESET_TIMEOUT seconds


@transaction.atomic
def account_create(*, organization: Organization, username: str, role: str) -> CreatedAccount:
    """A new user who belongs to the organization, with no password until they choose one
    through a one-time link (Django's token generator: it stops working once used)."""
    username = _clean_username(username)
    role = _clean_role(role)
    User = get_user_model()
    if User._default_manager.filter(username__iexact=username).exists():
        raise ValidationError({"username": "Username: this name is not available; choose another."})
    user = User(username=username, is_staff=role == Role.ADMIN)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    Membership.objects.create(user=user, organization=organization, role=role)
    record(
        Kind.ACCOUNT_CREATED,
        organization=organization,
        detail={"username": username, "role": role},
    )
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("set-password", kwargs={"uidb64": uid, "token": token})
    return CreatedAccount(user, path)
