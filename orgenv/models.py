"""The domain of docs/concepts.md "Organizations, projects, groups". Models keep only simple derived
values; writes with side effects live in orgenv.services, reads in orgenv.selectors and
orgenv.access."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .actors import history_user
from .crypto import DecryptsLoudly, EncryptedTextField, Undecryptable
from .validators import (
    NAME_MAX_LENGTH,
    environment_guard_errors,
    is_loader_name,
    validate_environment_label,
    validate_loader_name,
    validate_variable_name,
    validate_variable_value,
)

ENVIRONMENT_HELP = (
    "Optional label such as production, staging or development. A labelled group reaches "
    "only projects with the same label."
)


def _environment_field() -> models.CharField:
    return models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_environment_label],
        help_text=ENVIRONMENT_HELP,
    )


class HistoryActor(models.Model):
    """Extra column of every history table: who acted, as text (a username, a token prefix or
    system:<command>), so commands are attributed even without a user."""

    history_actor = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True


def _history(**kwargs: object) -> HistoricalRecords:
    kwargs["bases"] = [*kwargs.get("bases", []), HistoryActor]
    return HistoricalRecords(get_user=history_user, **kwargs)


def new_generation() -> int:
    """A fresh generation: random rather than counted, so that a number is never seen twice,
    not even for an id that a rolled-back transaction handed out again."""
    return secrets.randbits(62)


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    allow_loader_names = models.BooleanField(
        "allow runner-loader names",
        default=False,
        help_text="Allow variables such as LD_PRELOAD, PYTHONPATH or NODE_OPTIONS, which change "
        "how every program of every runner starts.",
    )
    require_admin_two_factor = models.BooleanField(
        "require two-factor sign-in of admins",
        default=False,
        help_text="An admin of this organization without an authenticator app is sent to "
        "set one up before reaching the admin.",
    )
    # Replaced by database triggers in the transaction of every write that can change a
    # resolution of one of its projects (migration 0006): read with the token, it keys the
    # layers an app server keeps (orgenv.selectors.layers.cached_layers).
    generation = models.PositiveBigIntegerField(default=new_generation, editable=False)
    history = _history(excluded_fields=["generation"])

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "admin"
        MEMBER = "member", "member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    history = _history()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_unique_user_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class Invitation(models.Model):
    """An org admin's invitation of a username to their organization. It names a username,
    not a user: inviting must not tell whether an account exists (SPEC "People"). The user
    with that username sees it on `/` and accepts or declines."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        ACCEPTED = "accepted", "accepted"
        DECLINED = "declined", "declined"
        CANCELLED = "cancelled", "cancelled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    username = models.CharField(max_length=150)
    role = models.CharField(
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "username"],
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_username",
            )
        ]

    def __str__(self) -> str:
        return f"{self.username} to {self.organization} ({self.status})"


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    slug = models.SlugField(max_length=64)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="orgenv_teams"
    )
    history = _history(m2m_fields=[members])

    class Meta:
        ordering = ["organization__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="team_unique_slug")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    environment = _environment_field()
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="orgenv_projects"
    )
    teams = models.ManyToManyField(Team, blank=True, related_name="projects")
    history = _history(m2m_fields=[members, teams])

    class Meta:
        ordering = ["organization__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_unique_slug")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"

    def clean(self) -> None:
        # Changing a project's label must not leave a labelled group selecting it.
        if self.pk is None:
            return
        errors = []
        for group in self.granted_groups.exclude(environment=""):
            errors += environment_guard_errors(
                group.name, group.environment, [(self.slug, self.environment)]
            )
        if errors:
            raise ValidationError({"environment": errors})


MAX_APPROVALS = 10
PROTECTED_ENVIRONMENT = "production"


def starts_protected(environment: str) -> bool:
    """Whether a new group with this label is created protected (SPEC "Change requests")."""
    return (environment or "").strip() == PROTECTED_ENVIRONMENT


class VariableGroup(models.Model):
    class Access(models.TextChoices):
        ALL = "all", "all projects"
        SELECTED = "selected", "selected projects and teams"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    name = models.SlugField(max_length=100)
    description = models.TextField(blank=True)
    environment = _environment_field()
    priority = models.IntegerField(
        default=0, help_text="Higher priority wins when two groups define the same name."
    )
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.SELECTED)
    max_age_days = models.PositiveIntegerField(
        "maximum age (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Optional: a secret of this group unchanged for longer is flagged overdue "
        "(hygiene page, the workspace, the hygiene command).",
    )
    protected = models.BooleanField(
        default=False,
        help_text="Changes made in the workspace open a change request that another org admin "
        "approves (docs/change-requests.md). A new group labelled production starts protected.",
    )
    required_approvals = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_APPROVALS)],
        help_text="How many other org admins approve a change request of this protected group.",
    )
    projects = models.ManyToManyField(Project, blank=True, related_name="granted_groups")
    teams = models.ManyToManyField(Team, blank=True, related_name="granted_groups")
    updated_at = models.DateTimeField(auto_now=True)
    history = _history(m2m_fields=[projects, teams])

    class Meta:
        ordering = ["organization__slug", "name"]
        verbose_name = "variable group"
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="group_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Relabelling a group must not leave it selecting projects of another label.
        if self.pk is None or not self.environment:
            return
        errors = environment_guard_errors(
            self.name, self.environment, self.projects.values_list("slug", "environment")
        )
        if errors:
            raise ValidationError({"environment": errors})


class _Definition(DecryptsLoudly, models.Model):
    """What a group variable and a project variable share: a name, a value, a secret flag."""

    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[validate_variable_name])
    value = EncryptedTextField(
        blank=True, validators=[validate_variable_value, MaxLengthValidator(65536)]
    )
    is_secret = models.BooleanField(
        "secret", default=False, help_text="Secret values are never shown after they are saved."
    )
    not_a_secret = models.BooleanField(
        "not a secret",
        default=False,
        help_text="This public value looks like a credential but is meant to be public: "
        "silence the warning. A new value needs acknowledging again.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def clean_fields(self, exclude: object = None) -> None:
        if isinstance(self.value, Undecryptable):
            # Kept as stored (its text is unknown, so there is nothing to validate): the
            # name or the flag of such a row can still change.
            exclude = {*(exclude or ()), "value"}
        super().clean_fields(exclude=exclude)
        if self.value is None:
            raise ValidationError({"value": "A value is required (it may be empty text)."})

    def clean(self) -> None:
        super().clean()
        if is_loader_name(self.name or ""):  # only then is the organization worth a query
            from .access import organization_of  # access imports the models

            allowed = Organization.objects.filter(
                pk=organization_of(self), allow_loader_names=True
            ).exists()
            try:
                validate_loader_name(self.name, allowed=allowed)
            except ValidationError as error:
                raise ValidationError({"name": error.messages}) from None


class Variable(_Definition):
    group = models.ForeignKey(VariableGroup, on_delete=models.CASCADE, related_name="variables")
    history = _history(bases=[DecryptsLoudly], excluded_fields=["updated_at"])

    class Meta(_Definition.Meta):
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="variable_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class ProjectVariable(_Definition):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="variables")
    history = _history(bases=[DecryptsLoudly], excluded_fields=["updated_at"])

    class Meta(_Definition.Meta):
        verbose_name = "project variable"
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="project_variable_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class ProjectTokenQuerySet(models.QuerySet):
    """The token status rule in SQL; ProjectToken.status is the same rule for one row."""

    def active(self, *, now: datetime | None = None) -> ProjectTokenQuerySet:
        """Tokens that authenticate at `now` (default: the clock's now)."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def expired(self) -> ProjectTokenQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())

    def revoked(self) -> ProjectTokenQuerySet:
        return self.filter(revoked_at__isnull=False)

    def with_status(self, status: str) -> ProjectTokenQuerySet:
        return getattr(self, ProjectToken.Status(status).value)()


class ProjectToken(models.Model):
    """A runner credential for one project. Only a digest of the secret part is stored."""

    class Status(models.TextChoices):
        # Revoked wins over expired: a revoked token stays revoked whatever its expiry.
        ACTIVE = "active"
        EXPIRED = "expired"
        REVOKED = "revoked"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=32,
        unique=True,
        editable=False,
        help_text="The public part of the token: oev_ and its lookup key.",
    )
    digest = models.CharField(max_length=128, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = _history(excluded_fields=["last_used_at", "digest"])

    objects = ProjectTokenQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        verbose_name = "project token"
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="token_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.ACTIVE


class Manifest(models.Model):
    """What resolutions delivered, never a value: each variable's name, source, row and
    version (the id of its history row), in delivery order, and the conflicts. Stored once
    per distinct content and referenced by every access event that delivered exactly that,
    so an unchanged project's event stays a small row (docs/forensics.md)."""

    digest = models.CharField(max_length=64, unique=True, editable=False)
    # [[name, source, row id, history id, is_secret 0/1], …]; a project's row ids belong to
    # its project variables (source "project"), the others to group variables.
    variables = models.JSONField(default=list)
    conflicts = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"manifest {self.digest[:12]} ({len(self.variables)} variables)"


class AuditEventQuerySet(models.QuerySet):
    """Bulk writes refuse too: an audit record changes or disappears only through `prune`."""

    def update(self, **kwargs: object) -> int:
        raise ValidationError("Audit events are append-only: they cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ValidationError("Audit events are append-only: prune_audit removes old ones.")

    def prune(self, older_than: object, *, batch_size: int = 2000) -> int:
        """Delete events older than `older_than` (a datetime); the one deliberate path.

        In batches of `batch_size` rows, each its own short transaction: one DELETE of a
        day's events held SQLite's write lock for 27 s, and every resolution (which writes
        its access event) waited for it or failed with "database is locked"."""
        deleted = 0
        while True:
            batch = list(
                self.filter(at__lt=older_than)
                .order_by("id")
                .values_list("id", flat=True)[:batch_size]
            )
            if not batch:
                return deleted
            with transaction.atomic(using=self.db):
                count, _ = models.QuerySet.delete(self.model._base_manager.filter(id__in=batch))
            deleted += count
            from .services.bulk import let_others_write  # services import the models

            let_others_write(self.db)


class AuditEvent(models.Model):
    """An append-only record of something that happened: a resolution, a sign-in, a token
    issued… It never holds a value. Text snapshots keep it readable after deletes."""

    class Kind(models.TextChoices):
        RESOLUTION = "resolution", "environment resolved"
        RESOLUTION_DENIED = "resolution_denied", "token rejected"
        LOGIN = "login", "signed in"
        LOGIN_FAILED = "login_failed", "sign-in failed"
        LOGOUT = "logout", "signed out"
        TOKEN_ISSUED = "token_issued", "token issued"
        TOKEN_REVOKED = "token_revoked", "token revoked"
        CONFIG_APPLIED = "config_applied", "configuration applied"
        VARIABLES_IMPORTED = "variables_imported", "variables imported"
        KEYS_ROTATED = "keys_rotated", "keys rotated"
        SECRET_REVEALED = "secret_revealed", "secret revealed"
        INVITATION_SENT = "invitation_sent", "invitation sent"
        INVITATION_ACCEPTED = "invitation_accepted", "invitation accepted"
        INVITATION_DECLINED = "invitation_declined", "invitation declined"
        INVITATION_CANCELLED = "invitation_cancelled", "invitation cancelled"
        MEMBER_ROLE_CHANGED = "member_role_changed", "role changed"
        MEMBER_REMOVED = "member_removed", "member removed"
        MEMBER_UNLOCKED = "member_unlocked", "member unlocked"
        ACCOUNT_CREATED = "account_created", "account created"
        TWO_FACTOR_ENABLED = "two_factor_enabled", "two-factor sign-in enabled"
        TWO_FACTOR_DISABLED = "two_factor_disabled", "two-factor sign-in disabled"
        CHANGE_REQUESTED = "change_requested", "change requested"
        CHANGE_APPROVED = "change_approved", "change approved"
        CHANGE_REJECTED = "change_rejected", "change rejected"
        CHANGE_WITHDRAWN = "change_withdrawn", "change request withdrawn"
        CHANGE_EXPIRED = "change_expired", "change request expired"
        CHANGE_APPLIED = "change_applied", "requested change applied"
        CHANGE_FORCED = "change_forced", "change forced (break glass)"
        WEBHOOK_CHANGED = "webhook_changed", "webhook endpoint changed"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    actor = models.CharField(
        max_length=200, blank=True, help_text="username, token:<prefix> or system:<command>"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organization_slug = models.CharField(max_length=64, blank=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    project_slug = models.CharField(max_length=64, blank=True)
    group_name = models.CharField(max_length=100, blank=True)
    token = models.ForeignKey(
        ProjectToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token_prefix = models.CharField(max_length=32, blank=True)
    token_name = models.CharField(max_length=100, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # Older resolutions kept their name → source map here; new ones reference a manifest.
    variables = models.JSONField(default=dict, blank=True, help_text="name → source; never a value")
    manifest = models.ForeignKey(
        Manifest, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organization", "-at"], name="audit_org_at")]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} by {self.actor or 'unknown'} at {self.at:%Y-%m-%d %H:%M:%S}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError("Audit events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValidationError("Audit events are append-only: prune_audit removes old ones.")

    @property
    def sources(self) -> dict[str, str]:
        """Name → source of what a resolution delivered, from its manifest (or, for events
        written before manifests, from `variables`)."""
        if self.manifest_id is None:
            return dict(self.variables)
        return {item[0]: item[1] for item in self.manifest.variables}


class AppServer(models.Model):
    """An app server process that answered recently, and which keys its key ring holds (as
    fingerprints, never keys): rotate_keys refuses to re-encrypt while one that answered
    recently could not decrypt the result (orgenv.rotation)."""

    name = models.CharField(max_length=200, unique=True, help_text="host:pid, or SERVER_NAME")
    key_fingerprints = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "app server"

    def __str__(self) -> str:
        return self.name


class PeriodicRun(models.Model):
    """When a periodic task (setting ORGENV_PERIODIC_TASKS) is next due: the row a process
    updates to claim a run, so that one run is enqueued however many workers look
    (orgenv.background)."""

    name = models.CharField(max_length=200, primary_key=True, help_text="the task's dotted path")
    due_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "periodic run"

    def __str__(self) -> str:
        return self.name


# The outbox, the webhooks and the change requests live in their packages; the app's models
# are one module.
from .changes.models import *  # noqa: E402,F403
from .notifications.models import *  # noqa: E402,F403
