"""Project tokens: issue, revoke, authenticate (services for the admin, commands and the API).

A token reads `oev_<lookup>.<secret>`: a 12-character lookup key that is stored in clear as
the `prefix` (`oev_<lookup>`, so a row is found with one indexed query and can be shown in
lists and audit records), and a 43-character random secret of which only a digest is stored.

The digest is plain SHA-256 of the secret part, hex. The secret carries 256 bits from
`secrets`, so a keyed or slow hash adds nothing against guessing, and an unkeyed digest keeps
every token valid when SECRET_KEY is rotated. Digests are compared with hmac.compare_digest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import DEFERRED, Model
from django.utils import timezone

from orgenv.audit import events as audit
from orgenv.notifications import emit
from orgenv.selectors.statements import first_read, per_vendor

from .models import AuditEvent, Organization, Project, ProjectToken

PREFIX = "oev_"
LOOKUP_LENGTH = 12
_LOOKUP_ALPHABET = string.ascii_letters + string.digits
# What a well-formed token looks like; anything else is refused before touching the database.
TOKEN_RE = re.compile(r"oev_([A-Za-z0-9]{12})\.([A-Za-z0-9_-]{32,128})")
# last_used_at is a hint for admins, not an audit trail: write it at most once a minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRejected(Exception):
    """A presented token that does not authenticate. `reason` is one of REASONS."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    EXPIRED = ProjectToken.Status.EXPIRED.value
    REVOKED = ProjectToken.Status.REVOKED.value
    REASONS = (MALFORMED, UNKNOWN, EXPIRED, REVOKED)

    def __init__(self, reason: str, *, prefix: str = "", token: ProjectToken | None = None) -> None:
        self.reason = reason
        self.prefix = prefix  # the public part, when the token could be parsed
        self.token = token  # the row, for expired and revoked tokens only
        super().__init__(f"token rejected: {reason}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _new_lookup() -> str:
    return "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(LOOKUP_LENGTH))


def expiry(
    *, days: int | None, expires_at: datetime | None, never_expires: bool = False
) -> datetime | None:
    """When a new token expires: `days` from now, at `expires_at`, or never — alternatives;
    none of them means settings.TOKEN_DEFAULT_DAYS from now, so a token that never expires
    is always chosen explicitly. The one place the rule is checked: the admin form and the
    command call it."""
    if days is not None and expires_at is not None:
        raise ValidationError({"days": "Give either a number of days or an expiry date, not both."})
    if never_expires:
        if days is not None or expires_at is not None:
            raise ValidationError(
                {"days": "A token that never expires has no number of days or expiry date."}
            )
        return None
    if days is None and expires_at is None:
        days = settings.TOKEN_DEFAULT_DAYS
    if days is not None:
        if days < 1:
            raise ValidationError({"days": f"days must be a positive number, not {days}."})
        return timezone.now() + timedelta(days=days)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry date must be in the future."})
    return expires_at


@transaction.atomic
def token_issue(
    *,
    project: Project,
    name: str,
    days: int | None = None,
    expires_at: datetime | None = None,
    never_expires: bool = False,
    created_by: object = None,
) -> tuple[ProjectToken, str]:
    """Create a token for `project`; return the row and the full token, which is shown once
    and never stored. `days` (from now), `expires_at` and `never_expires` are alternatives;
    none of them means settings.TOKEN_DEFAULT_DAYS (see expiry)."""
    expires_at = expiry(days=days, expires_at=expires_at, never_expires=never_expires)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A token needs a name, such as the runner that uses it."})
    if ProjectToken.objects.filter(project=project, name=name).exists():
        raise ValidationError(
            {"name": f"Project {project} already has a token named {name!r}: choose another name."}
        )

    lookup, secret = _new_lookup(), secrets.token_urlsafe(32)
    token = ProjectToken(
        project=project,
        name=name,
        prefix=f"{PREFIX}{lookup}",
        digest=digest(secret),
        expires_at=expires_at,
        created_by=created_by,
    )
    token.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            token.save()
    except IntegrityError:
        # A concurrent issue with the same name won the race (a lookup-key collision in
        # 62**12 is not worth a retry loop).
        raise ValidationError(
            {"name": f"Project {project} already has a token named {name!r}: choose another name."}
        ) from None
    audit.record(
        AuditEvent.Kind.TOKEN_ISSUED,
        token=token,
        detail={"expires_at": expires_at.isoformat() if expires_at else None},
    )
    emit.token_created(token)
    return token, f"{token.prefix}.{secret}"


def check_expiry_change(*, current: datetime | None, new: datetime | None) -> None:
    """An issued token's expiry can only be brought forward. A later date, or none, would
    bring an expired token back to life or stretch a lifetime someone agreed to: a longer
    life is a new token."""
    if new == current or (new is not None and (current is None or new < current)):
        return
    now = f"it expires {current:%Y-%m-%d %H:%M} UTC" if current else "it does not expire"
    raise ValidationError(
        {
            "expires_at": f"A token's expiry can only be brought forward ({now}); "
            "for a longer life, issue a new token."
        }
    )


@transaction.atomic
def token_update(*, token: ProjectToken, name: str, expires_at: datetime | None) -> ProjectToken:
    """Rename a token or bring its expiry forward (check_expiry_change)."""
    current = ProjectToken.objects.select_for_update().get(pk=token.pk)
    check_expiry_change(current=current.expires_at, new=expires_at)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A token needs a name, such as the runner that uses it."})
    if (
        ProjectToken.objects.filter(project_id=current.project_id, name=name)
        .exclude(pk=token.pk)
        .exists()
    ):
        raise ValidationError(
            {"name": f"Project {current.project} already has a token named {name!r}."}
        )
    token.name, token.expires_at = name, expires_at
    token.full_clean(validate_constraints=False)
    token.save(update_fields=["name", "expires_at"])
    return token


@transaction.atomic
def token_revoke(*, token: ProjectToken) -> ProjectToken:
    """Revoke a token: the very next request with it gets 401. Revoking twice is harmless
    and keeps the first revocation time."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            AuditEvent.Kind.TOKEN_REVOKED,
            token=token,
        )
        emit.token_revoked(token)
    return token


def parse(raw: str) -> tuple[str, str]:
    """Split a presented token into (prefix, secret), or raise TokenRejected(malformed)."""
    match = TOKEN_RE.fullmatch(raw or "")
    if match is None:
        prefix = raw[: len(PREFIX) + LOOKUP_LENGTH] if raw.startswith(PREFIX) else ""
        # Only a prefix made of the lookup alphabet is safe to record.
        if not re.fullmatch(r"oev_[A-Za-z0-9]{12}", prefix):
            prefix = ""
        raise TokenRejected(TokenRejected.MALFORMED, prefix=prefix)
    return f"{PREFIX}{match.group(1)}", match.group(2)


def _build_token_sql(connection: Any) -> str:
    q = connection.ops.quote_name
    tokens, projects = q(ProjectToken._meta.db_table), q(Project._meta.db_table)
    organizations = q(Organization._meta.db_table)
    # The status rule of ProjectToken.status (revoked wins over expired), in SQL, so that no
    # date has to be read back; and whether last_used_at is due again.
    return (
        "SELECT t.id, t.digest, t.name, t.project_id, p.slug, p.environment, "
        "p.organization_id, o.slug, o.generation, "
        "t.revoked_at IS NOT NULL, t.expires_at IS NOT NULL AND t.expires_at <= %s, "
        "t.last_used_at IS NULL OR t.last_used_at <= %s "
        f"FROM {tokens} t JOIN {projects} p ON p.id = t.project_id "
        f"JOIN {organizations} o ON o.id = p.organization_id WHERE t.prefix = %s"
    )


def _partial(model: type[Model], using: str, values: dict[str, Any]) -> Any:
    """An instance of `model` with these fields loaded (by attname); any other field is
    deferred, so reading it loads it."""
    row = [values.get(f.attname, DEFERRED) for f in model._meta.concrete_fields]
    return model.from_db(using, list(values), row)


def token_authenticate(raw: str, *, using: str = DEFAULT_DB_ALIAS) -> ProjectToken:
    """The token row for a presented token (with its project and its organization, whose
    generation is read in the same statement), or TokenRejected saying why not. One
    prepared statement; a second, at most once a minute per token, for last_used_at."""
    prefix, secret = parse(raw)
    connection = connections[using]
    now = timezone.now()
    row = first_read(
        _token_sql(connection),
        [
            connection.ops.adapt_datetimefield_value(now),
            connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION),
            prefix,
        ],
        using,
    )
    # Compare even when the prefix is unknown, so both cases take the same time.
    expected = row[1] if row is not None else "0" * 64
    if not hmac.compare_digest(expected, digest(secret)) or row is None:
        raise TokenRejected(TokenRejected.UNKNOWN, prefix=prefix)
    (token_id, _, name, project_id, slug, environment, org_id, org_slug, generation) = row[:9]
    revoked, expired, used_long_ago = row[9:]
    if revoked or expired:
        # Rare: the whole row, for the denial's record.
        token = ProjectToken.objects.select_related("project__organization").get(pk=token_id)
        status = ProjectToken.Status.REVOKED if revoked else ProjectToken.Status.EXPIRED
        raise TokenRejected(str(status), prefix=prefix, token=token)
    organization = _partial(
        Organization, using, {"id": org_id, "slug": org_slug, "generation": generation}
    )
    project = _partial(
        Project,
        using,
        {"id": project_id, "organization_id": org_id, "slug": slug, "environment": environment},
    )
    project.organization = organization
    token = _partial(
        ProjectToken,
        using,
        {
            "id": token_id,
            "project_id": project_id,
            "name": name,
            "prefix": prefix,
            "digest": row[1],
        },
    )
    token.project = project
    if used_long_ago:
        # A queryset update: no history row, no signal, no full save.
        ProjectToken.objects.filter(pk=token_id).update(last_used_at=now)
    return token


_token_sql = per_vendor(_build_token_sql)
