"""How a value appears in any history or audit view: never as itself.

One helper, used by the admin history pages (orgenv.admin.history), the audit timeline and
its CSV (orgenv.audit.views). Like NetBox's CENSOR_TOKEN / CENSOR_TOKEN_CHANGED, the words
are named constants so tests can assert them.

Decision: history views censor the values of EVERY variable and project variable, public or
secret, not only secrets. Three reasons:
- a variable created public and later marked secret (the usual "oops, that was a key")
  would otherwise show its current secret value in its own public past;
- history is kept for AUDIT_RETENTION_DAYS and read long after the fact, by people who
  were not there when the value was entered;
- the audited way to see a past value is `resolve_env --as-of`, which is an admin-only
  command, not a page.
So every change to a value shows as "value changed", and a value in a one-version view
shows as the mask. A change of the secret *flag* is shown: it is not a value.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from orgenv.crypto import EncryptedTextField

# A change to a value, in a diff ("Changes" column, audit timeline, CSV).
CENSORED = "value changed"
# A value shown on its own (the historical-version form, a list column).
MASK = "••••••"

# Fields that are never shown in history though they are not encrypted (a token digest).
_ALWAYS_CENSORED = frozenset({"digest"})


def censored_fields(model: type[Model]) -> frozenset[str]:
    """Names of the fields of `model` (or of its history model) that history never shows."""
    names = {f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)}
    return frozenset(names | (_ALWAYS_CENSORED & {f.name for f in model._meta.fields}))


def is_censored(model: type[Model], field_name: str) -> bool:
    return field_name in censored_fields(model)


def change_display(model: type[Model], field_name: str, old: Any, new: Any) -> tuple[Any, Any]:
    """The (old, new) pair a diff may show for one changed field."""
    if is_censored(model, field_name):
        return MASK, CENSORED
    return old, new


def value_display(model: type[Model], field_name: str, value: Any) -> Any:
    """What a one-version view may show for one field."""
    if is_censored(model, field_name):
        return MASK
    return value


def changed_field_names(model: type[Model], names: list[str]) -> list[str]:
    """Field names for a timeline's summary: a censored field reads as the censor word."""
    return [CENSORED if is_censored(model, n) else n for n in names]
