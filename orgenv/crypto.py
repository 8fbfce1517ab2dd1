"""Encryption at rest: the key ring and the encrypted model field.

Every variable value, public or secret, is stored as a Fernet token. The key ring is a
MultiFernet over settings.FERNET_KEYS: the first key encrypts, every key decrypts. It is
built once per process (rebuilt only when the setting changes, as in tests).

A token that no configured key can decrypt is an error, never a value: the field hands back
an `Undecryptable` marker that refuses to be used as text, and models that carry encrypted
fields turn it into a `DecryptionError` naming the table, the column and the row.
"""

from __future__ import annotations

import base64
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError
from django.core.signals import setting_changed
from django.db import models
from django.db.models import ExpressionWrapper, F, Lookup, Transform
from django.db.models.options import Options
from django.dispatch import Signal, receiver

_lock = threading.Lock()
# The current FERNET_KEYS, the ring made of them, and each key on its own (for signer()).
_ring: tuple[tuple[str, ...], MultiFernet, tuple[Fernet, ...]] | None = None

# Sent each time a stored token does not decrypt (orgenv.operations.metrics counts them).
decryption_failed = Signal()


class DecryptionError(Exception):
    """A stored value that no key in FERNET_KEYS can decrypt."""


class Ciphertext(str):
    """A Fernet token, never plaintext: the field stores it as it is, and only decrypt()
    turns it into text. Rotation and copies between tables move tokens without decrypting
    them; a resolution holds its values as Ciphertext, so nothing can print one by mistake
    as if it were the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Ciphertext(…)"


# How a value no key decrypts is shown wherever a value would be (with its table and id).
UNDECRYPTABLE = "cannot be decrypted (key missing)"


class Undecryptable:
    """What the field returns for a token no key can decrypt. It refuses every use as text,
    equals nothing (so any new value replaces it), and is stored back as the very token it
    was read as: a row can be saved, copied to history, overwritten or deleted without its
    plaintext."""

    __slots__ = ("table", "column", "token", "row")

    def __init__(self, table: str, column: str, token: str = "", row: object = None) -> None:
        self.table = table
        self.column = column
        self.token = token
        self.row = row

    def error(self, row: object = None) -> DecryptionError:
        where = f"{self.table}.{self.column}"
        row = self.row if row is None else row
        if row is not None:
            where += f" (row id={row})"
        return DecryptionError(
            f"Cannot decrypt {where}: no key in FERNET_KEYS decrypts it. "
            "Add the key it was written with to FERNET_KEYS, then run rotate_keys; or "
            "overwrite or delete the value."
        )

    def describe(self) -> str:
        """The note shown in place of the value: what is wrong, and which row."""
        return f"{UNDECRYPTABLE}: {self.table} id {self.row}"

    # Every use as text fails loudly, naming the table and column.
    def __str__(self) -> str:
        raise self.error()

    def __len__(self) -> int:
        raise self.error()

    def __iter__(self) -> Iterator[str]:
        raise self.error()

    def __hash__(self) -> int:
        raise self.error()

    def __add__(self, other: object) -> str:
        raise self.error()

    def __radd__(self, other: object) -> str:
        raise self.error()

    def encode(self, *args: object, **kwargs: object) -> bytes:
        raise self.error()

    def replace(self, *args: object, **kwargs: object) -> str:
        raise self.error()

    def strip(self, *args: object, **kwargs: object) -> str:
        raise self.error()

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<Undecryptable {self.table}.{self.column} row {self.row}>"


def validate_keys(keys: list[str] | tuple[str, ...]) -> list[str]:
    """Return one message per unusable key (empty when the list is good)."""
    if not keys:
        return ["FERNET_KEYS is empty: at least one key is needed."]
    problems = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError):
            problems.append(
                f"FERNET_KEYS key #{position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            )
    return problems


class PlaintextCache:
    """Plaintexts of current values, keyed by the row they belong to, bounded by bytes.

    A row has one entry: when its token changes (an edit, a rotation), the next lookup misses
    and the new plaintext replaces the old one, so a superseded value does not linger in
    memory. Least recently used entries go first once `max_bytes` (DECRYPTION_CACHE_BYTES)
    is reached; a value bigger than the whole budget is not cached.

    `answers` is a second one, for the runner endpoint's rendered answers: one entry per
    project and format, checked against the answer's ETag (the fingerprint of the stored
    rows), so a new state replaces the old answer as a new token replaces a value.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[object, ...], tuple[str, str, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[object, ...], token: str, *, count_miss: bool = True) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != token:
                self.misses += count_miss
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: tuple[object, ...], token: str, plaintext: str) -> None:
        size = sys.getsizeof(token) + sys.getsizeof(plaintext)
        limit = settings.DECRYPTION_CACHE_BYTES
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old[2]
            if size > limit:
                return
            self._entries[key] = (token, plaintext, size)
            self.bytes += size
            while self.bytes > limit:
                _, (_, _, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = self.hits = self.misses = 0


plaintexts = PlaintextCache()
answers = PlaintextCache()


def _current_ring() -> tuple[tuple[str, ...], MultiFernet, tuple[Fernet, ...]]:
    global _ring
    keys = tuple(settings.FERNET_KEYS)
    ring = _ring
    if ring is not None and ring[0] == keys:
        return ring
    with _lock:
        if _ring is None or _ring[0] != keys:
            problems = validate_keys(keys)
            if problems:
                raise DecryptionError(" ".join(problems))
            fernets = tuple(Fernet(k.encode()) for k in keys)
            _ring = (keys, MultiFernet(fernets), fernets)
            plaintexts.clear()  # nothing decrypted under another key ring survives it
            answers.clear()
        return _ring


def key_ring() -> MultiFernet:
    """The process-wide MultiFernet for the current FERNET_KEYS."""
    return _current_ring()[1]


def signer(token: str, *, old_first: bool = False) -> int | None:
    """The position in FERNET_KEYS of the key that wrote `token` (0: the first, current
    key), or None when no configured key did. Decided on the token's signature alone
    (Fernet.extract_timestamp checks the HMAC), without decrypting it. `old_first` tries the
    other keys before the first (rotate_keys: most values are under an old key then)."""
    data = token.encode("ascii", "replace")
    keys = list(enumerate(_current_ring()[2]))
    for position, key in keys[1:] + keys[:1] if old_first else keys:
        try:
            key.extract_timestamp(data)
        except InvalidToken:
            continue
        return position
    return None


@receiver(setting_changed)
def _reset_on_setting_change(*, setting: str, **kwargs: object) -> None:
    global _ring
    if setting == "FERNET_KEYS":
        with _lock:
            _ring = None
            plaintexts.clear()
            answers.clear()


def encrypt(plaintext: str) -> str:
    return key_ring().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(
    token: str,
    *,
    table: str = "?",
    column: str = "value",
    row: object = None,
    cache: bool = False,
    keep: bool = True,
) -> str:
    """Decrypt one token, or raise DecryptionError naming where it came from.

    With cache=True (the current value of row `row` of `table`), the plaintext is kept in
    `plaintexts` so that the next resolution of an unchanged value costs no decryption.
    keep=False, for a value that may never be committed (what a preview would write): a
    plaintext kept already is used, none is added or replaced."""
    ring = key_ring()  # also makes sure the cache belongs to the current keys
    key = (table, row)
    if cache:
        hit = plaintexts.get(key, token)
        if hit is not None:
            return hit
    try:
        plaintext = ring.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):
        decryption_failed.send(sender=Undecryptable, table=table, column=column)
        raise Undecryptable(table, column).error(row) from None
    if cache and keep:
        plaintexts.put(key, token, plaintext)
    return plaintext


def rotated(token: str) -> str | None:
    """`token` re-encrypted with the first key of FERNET_KEYS, its timestamp kept (as
    MultiFernet.rotate does); None when the first key wrote it (as `signer` says). For
    rotate_keys, which has checked every value beforehand and finds most of them under an
    old key: those are tried first, so that a value to rotate costs one signature check
    rather than three. DecryptionError when no key decrypts it."""
    first, *others = _current_ring()[2]
    data = token.encode("ascii", "replace")
    for key in others:
        try:
            plaintext = key.decrypt(data)
        except InvalidToken:
            continue
        # Bytes 1-8 of a Fernet token: its timestamp, authenticated by the decryption above.
        timestamp = int.from_bytes(base64.urlsafe_b64decode(data)[1:9], "big")
        return first.encrypt_at_time(plaintext, timestamp).decode("ascii")
    try:
        first.extract_timestamp(data)
    except InvalidToken:
        raise DecryptionError(
            "A stored value cannot be decrypted with any key in FERNET_KEYS; "
            "add the key it was written with before rotating."
        ) from None
    return None


def remember(token: str, plaintext: str, *, table: str, row: object) -> None:
    """Keep the plaintext of a value just written as `token` to row `row` of `table`, as
    decrypt(cache=True) would on reading it back: bulk writers (orgenv.services.definitions)
    know it already, and their next reading of the row then decrypts nothing."""
    key_ring()  # the cache belongs to the current keys
    plaintexts.put((table, row), token, plaintext)


def rotate(token: str) -> str:
    """Re-encrypt a token with the first key (decrypting with any)."""
    try:
        return key_ring().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError(
            "A stored value cannot be decrypted with any key in FERNET_KEYS; "
            "add the key it was written with before rotating."
        ) from None


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token. Only `isnull` lookups make sense on it."""

    description = "Text encrypted at rest with Fernet"

    def get_prep_value(self, value: object) -> object:
        if isinstance(value, Undecryptable):
            return Ciphertext(value.token)  # stored back unchanged: its plaintext is unknown
        value = super().get_prep_value(value)
        if value is None or isinstance(value, Ciphertext):
            return value
        return encrypt(str(value))

    def from_db_value(self, value: str | None, expression: object, connection: object) -> object:
        if value is None:
            return None
        try:
            return decrypt(value)
        except DecryptionError:
            return Undecryptable(self.model._meta.db_table, self.column, value)

    def get_lookup(self, lookup_name: str) -> type[Lookup] | None:
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: only isnull lookups are "
                f"possible, not {lookup_name!r}."
            )
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name: str) -> type[Transform] | None:
        return None


class DecryptsLoudly:
    """Mixin for models with encrypted fields: a value no key decrypts loads as an
    Undecryptable that knows its row, so that every use of it as text fails naming the
    table and id, while the row itself can still be listed, overwritten and deleted."""

    _meta: Options

    @classmethod
    def from_db(cls, db: str | None, field_names: list[str], values: list[Any]) -> Any:
        for value in values:
            if isinstance(value, Undecryptable) and cls._meta.pk.attname in field_names:
                value.row = values[field_names.index(cls._meta.pk.attname)]
        return super().from_db(db, field_names, values)


def stored_token(field: str) -> ExpressionWrapper:
    """An expression reading an encrypted column's stored token as plain text, so that the
    field does not decrypt it (for tuples, fingerprints and rotation)."""
    return ExpressionWrapper(F(field), output_field=models.TextField())


def encrypted_fields(model: type[models.Model]) -> list[EncryptedTextField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
