"""Key rotation: re-encrypt every stored value with the first key of FERNET_KEYS.

Every table with an EncryptedTextField is covered, history tables included, because the
simple-history models are models too. Tokens move from the old key to the new one inside
the key ring (`crypto.rotate`): no plaintext leaves orgenv.crypto, and rows are written with
`QuerySet.update()` on the raw column, which neither creates history rows nor touches
`updated_at`: rotation changes how a value is stored, not the value.

Rotation runs beside live traffic, so it never holds a lock for long and never overwrites a
newer value:
- a first, read-only pass checks that every value decrypts, so that a missing key stops the
  command before anything is written;
- then each batch is read without a lock and written in its own short transaction, each row
  with a conditional update (`WHERE pk = … AND value = <the token read>`): a value changed
  by an editor after the batch was read is not touched, and is read again and rotated in its
  new version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.db.models.lookups import Exact

from . import crypto

BATCH_SIZE = 500
# A row rewritten by an editor between our read and our write is read again; one that keeps
# changing this many times in a row is left for the next run (and reported).
MAX_ATTEMPTS = 5


class RotationError(Exception):
    """A stored value that no key decrypts; the message names the table, column and row."""


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" → rows re-encrypted
    current: int = 0  # rows already encrypted with the first key
    raced: int = 0  # rows changed by an editor while being rotated (then rotated again)
    left: list[str] = field(default_factory=list)  # "table.column (row id=N)" still to rotate

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def encrypted_columns() -> list[tuple[type[Model], str]]:
    """(model, field name) of every encrypted column of every installed model."""
    return [
        (model, f.name)
        for model in apps.get_models()
        for f in crypto.encrypted_fields(model)
        if not model._meta.proxy
    ]


def _is_current(token: str, first: Fernet) -> bool:
    # extract_timestamp checks the token's signature with the first key without decrypting:
    # a token that passes was written with that key and needs no rotation.
    try:
        first.extract_timestamp(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def _batches(model: type[Model], name: str, batch_size: int) -> Iterator[list[tuple[int, str]]]:
    """(pk, stored token) of every non-null value, in pk order, one short query per batch."""
    rows = (
        model._base_manager.exclude(**{f"{name}__isnull": True})
        .annotate(raw_token=crypto.stored_token(name))
        .order_by("pk")
    )
    last_pk = None
    while True:
        page = rows if last_pk is None else rows.filter(pk__gt=last_pk)
        batch = list(page.values_list("pk", "raw_token")[:batch_size])
        if not batch:
            return
        yield batch
        last_pk = batch[-1][0]


def _where(model: type[Model], name: str) -> str:
    return f"{model._meta.db_table}.{model._meta.get_field(name).column}"


def check_all(*, batch_size: int = BATCH_SIZE) -> None:
    """Raise RotationError naming the first value no key decrypts; writes nothing."""
    ring = crypto.key_ring()
    first = Fernet(settings.FERNET_KEYS[0].encode())
    for model, name in encrypted_columns():
        for batch in _batches(model, name, batch_size):
            for pk, token in batch:
                if _is_current(token, first):
                    continue
                try:
                    ring.decrypt(token.encode("ascii"))
                except (InvalidToken, UnicodeError):
                    raise RotationError(
                        f"Cannot decrypt {_where(model, name)} (row id={pk}) with any key in "
                        "FERNET_KEYS: add the key it was written with (or overwrite or delete "
                        "that row), then run rotate_keys again. Nothing was changed."
                    ) from None


def _rotate_batch(
    model: type[Model], name: str, batch: list[tuple[int, str]], first: Fernet
) -> tuple[int, int, list[tuple[int, str]]]:
    """Rotate one batch in one short transaction; return (rotated, current, changed rows)."""
    todo = []
    current = 0
    for pk, token in batch:
        if _is_current(token, first):
            current += 1
        else:
            todo.append((pk, token, crypto.rotate(token)))  # outside the transaction
    changed = []
    rotated = 0
    manager = model._base_manager
    raw = crypto.stored_token(name)
    with transaction.atomic():
        for pk, old, new in todo:
            # Only if the row still holds the token we read: never write back an old value.
            if manager.filter(Exact(raw, old), pk=pk).update(**{name: crypto.Ciphertext(new)}):
                rotated += 1
            else:
                changed.append(pk)
    fresh = list(
        manager.filter(pk__in=changed, **{f"{name}__isnull": False})
        .annotate(raw_token=raw)
        .values_list("pk", "raw_token")
    )
    return rotated, current, fresh


def rotate_all(*, batch_size: int = BATCH_SIZE) -> RotationReport:
    """Re-encrypt with the first key every value that is not already, batch by batch.

    Raises RotationError, having changed nothing, when some value cannot be decrypted.
    """
    crypto.key_ring()  # fails early, and clearly, on a bad FERNET_KEYS
    check_all(batch_size=batch_size)
    first = Fernet(settings.FERNET_KEYS[0].encode())
    report = RotationReport()
    for model, name in encrypted_columns():
        where = _where(model, name)
        rotated = 0
        for batch in _batches(model, name, batch_size):
            for _attempt in range(MAX_ATTEMPTS):
                done, current, batch = _rotate_batch(model, name, batch, first)
                rotated += done
                report.current += current
                if not batch:
                    break
                report.raced += len(batch)
            else:
                report.left += [f"{where} (row id={pk})" for pk, _ in batch]
        if rotated:
            report.rotated[where] = rotated
    return report
