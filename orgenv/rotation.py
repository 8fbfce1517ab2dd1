"""Key rotation: re-encrypt every stored value with the first key of FERNET_KEYS.

Every table with an EncryptedTextField is covered, history tables included, because the
simple-history models are models too. Tokens move from the old key to the new one inside
the key ring (`crypto.rotate`): no plaintext leaves orgenv.crypto, and rows are written with
`QuerySet.update()` on the raw column, which neither creates history rows nor touches
`updated_at`: rotation changes how a value is stored, not the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Model

from . import crypto

BATCH_SIZE = 500


class RotationError(Exception):
    """A stored value that no key decrypts; the message names the table, column and row."""


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "table.column" → rows re-encrypted
    current: int = 0  # rows already encrypted with the first key

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


@transaction.atomic
def rotate_all(*, batch_size: int = BATCH_SIZE) -> RotationReport:
    """Re-encrypt with the first key every value that is not already; all or nothing."""
    crypto.key_ring()  # fails early, and clearly, on a bad FERNET_KEYS
    first = Fernet(settings.FERNET_KEYS[0].encode())
    report = RotationReport()
    for model, name in encrypted_columns():
        table = f"{model._meta.db_table}.{model._meta.get_field(name).column}"
        manager = model._base_manager
        raw = crypto.stored_token(name)
        last_pk = None
        rotated = 0
        while True:
            rows = manager.exclude(**{f"{name}__isnull": True}).order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows.annotate(raw_token=raw).values_list("pk", "raw_token")[:batch_size])
            if not batch:
                break
            for pk, token in batch:
                if _is_current(token, first):
                    report.current += 1
                    continue
                try:
                    new = crypto.rotate(token)
                except crypto.DecryptionError:
                    raise RotationError(
                        f"Cannot decrypt {table} (row id={pk}) with any key in FERNET_KEYS: add "
                        "the key it was written with, then run rotate_keys again. Nothing was "
                        "changed."
                    ) from None
                manager.filter(pk=pk).update(**{name: crypto.Ciphertext(new)})
                rotated += 1
            last_pk = batch[-1][0]
        if rotated:
            report.rotated[table] = rotated
    return report
