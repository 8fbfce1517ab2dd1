"""Change requests of protected groups (SPEC "Change requests", docs/change-requests.md).

A request holds what its author proposed, as a change to the group as it was at
`base_version`: the group's own fields that differ, the grants added and removed, and one
ProposedVariable per variable added, changed or removed. Proposed values are stored like every
value (the encrypted field, re-encrypted by rotate_keys) and are never shown: the request's
diff (`diff`) lists names and what changes, never a value."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from orgenv.crypto import DecryptsLoudly, EncryptedTextField

__all__ = ["Approval", "ChangeRequest", "ProposedVariable"]

LIFETIME = timedelta(days=7)


def expiry() -> datetime:
    return timezone.now() + LIFETIME


class ChangeRequestQuerySet(models.QuerySet):
    def open(self, *, now: datetime | None = None) -> ChangeRequestQuerySet:
        """Open and not yet past their expiry (the periodic task closes the others)."""
        return self.filter(status=ChangeRequest.Status.OPEN, expires_at__gt=now or timezone.now())


class ChangeRequest(models.Model):
    class Kind(models.TextChoices):
        CHANGE = "change", "change"
        DELETION = "deletion", "deletion"

    class Status(models.TextChoices):
        OPEN = "open", "open"
        APPLIED = "applied", "applied"
        REJECTED = "rejected", "rejected"
        WITHDRAWN = "withdrawn", "withdrawn"
        EXPIRED = "expired", "expired"

    organization = models.ForeignKey(
        "orgenv.Organization", on_delete=models.CASCADE, related_name="change_requests"
    )
    group = models.ForeignKey(
        "orgenv.VariableGroup",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="change_requests",
    )
    group_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHANGE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    comment = models.TextField(blank=True, help_text="why the author proposes it")
    # The group's version (orgenv.changes.state.group_version) the change was made against.
    base_version = models.CharField(max_length=64)
    # The group's own fields that change: {"priority": 5, "environment": "production"}.
    fields = models.JSONField(default=dict, blank=True)
    # Grants added and removed: [[id, slug], …] of projects and teams.
    projects_added = models.JSONField(default=list, blank=True)
    projects_removed = models.JSONField(default=list, blank=True)
    teams_added = models.JSONField(default=list, blank=True)
    teams_removed = models.JSONField(default=list, blank=True)
    # What the request page and the mails show: [[what, name, change], …], never a value.
    diff = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(default=expiry)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    # The rejection's comment, or the reason given to break glass.
    close_comment = models.TextField(blank=True)
    forced = models.BooleanField(default=False)
    # The projects whose environment the applied change altered (slugs), for the record.
    projects_affected = models.JSONField(default=list, blank=True)

    objects = ChangeRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["organization", "status", "-created_at"], name="change_request_org"
            )
        ]

    def __str__(self) -> str:
        return f"change request #{self.pk} for {self.group_name} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN and self.expires_at > timezone.now()

    @property
    def shown_status(self) -> str:
        """The status as it stands: an open request past its expiry reads expired before
        the periodic task closes it."""
        if self.status == self.Status.OPEN and not self.is_open:
            return self.Status.EXPIRED
        return self.status


class ProposedVariable(DecryptsLoudly, models.Model):
    """One variable the request adds, changes or removes (`value` None: removed)."""

    request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="variables")
    name = models.CharField(max_length=200)
    value = EncryptedTextField(null=True, blank=True)
    is_secret = models.BooleanField(default=False)
    not_a_secret = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["request", "name"], name="proposed_variable_unique")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def removed(self) -> bool:
        return self.value is None


class Approval(models.Model):
    request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="approval_one_per_admin")
        ]

    def __str__(self) -> str:
        return f"{self.username} approved #{self.request_id}"
