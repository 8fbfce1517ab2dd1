"""How a value appears in any history or audit view: never as itself. `censored_fields` is
the one rule, called by the admin history pages and version views (orgenv.admin.history) and
the audit timeline and its CSV (orgenv.audit.timeline); the words are named constants, as
NetBox's CENSOR_TOKEN, so tests can assert them.

Every variable's value is censored, public or secret: a value made secret later must not
show in its own public past, and the audited way to a past value is `resolve_env --as-of`.
A change of the secret *flag* is shown: it is not a value.
"""

from __future__ import annotations

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
