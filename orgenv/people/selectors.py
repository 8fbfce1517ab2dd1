"""Reads about people: the People page of an organization and a user's pending invitations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from orgenv.models import Invitation, Membership, Organization

from .services import invitation_cutoff


@dataclass(frozen=True)
class Person:
    membership: Membership
    two_factor: bool
    locked_out: bool

    @property
    def username(self) -> str:
        return self.membership.user.get_username()


def locked_out_usernames(usernames: list[str]) -> set[str]:
    """Usernames django-axes is refusing right now (failures at the limit, within the
    cool-off)."""
    from axes.models import AccessAttempt

    attempts = AccessAttempt.objects.filter(
        username__in=usernames, failures_since_start__gte=settings.AXES_FAILURE_LIMIT
    )
    cooloff = getattr(settings, "AXES_COOLOFF_TIME", None)
    if isinstance(cooloff, int | float):
        attempts = attempts.filter(attempt_time__gte=timezone.now() - timedelta(hours=cooloff))
    return set(attempts.values_list("username", flat=True))


def people_of(organization: Organization) -> list[Person]:
    """Members with their role, whether they use a second factor, whether they are locked
    out. Three queries whatever the number of members."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    memberships = list(
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__username")
    )
    user_ids = [m.user_id for m in memberships]
    enrolled = set(
        TOTPDevice.objects.filter(user_id__in=user_ids, confirmed=True).values_list(
            "user_id", flat=True
        )
    )
    locked = locked_out_usernames([m.user.get_username() for m in memberships])
    return [
        Person(m, two_factor=m.user_id in enrolled, locked_out=m.user.get_username() in locked)
        for m in memberships
    ]


def pending_invitations(organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization=organization,
        status=Invitation.Status.PENDING,
        created_at__gte=invitation_cutoff(),
    ).select_related("invited_by")


def invitations_for(user: object) -> QuerySet[Invitation]:
    """The pending invitations addressed to this user's username (shown on `/`)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Invitation.objects.none()
    return (
        Invitation.objects.filter(
            username=user.get_username(),
            status=Invitation.Status.PENDING,
            created_at__gte=invitation_cutoff(),
        )
        .select_related("organization", "invited_by")
        .order_by("created_at")
    )
