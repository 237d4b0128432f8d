"""`FieldCipher`: the one object the data plane calls per protected field.

Associated data binds each ciphertext to its table, column and row key (`associated_data`), so a value
copied into another row or column fails with `DecryptionFailed`. NULL stays NULL (not encrypted): whether a
protected field is set is visible, its value is not."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Protocol

from generator.crypto import blind, codec, envelope
from generator.payload.specs import FieldSpec

AAD_LABEL = b"drg aad v1"


class Engine(Protocol):
    """What both engines offer (`AesGcmEngine`, `KmsEngine`)."""

    key_id: bytes

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def decrypt(self, stored: bytes, aad: bytes) -> bytes: ...


def associated_data(table: str, column: str, key: Sequence[Any]) -> bytes:
    """The associated data of one stored value: table, column and the row's primary key values, each
    length-prefixed; key values by type and exact value (1 and Decimal("1.0") alike, datetimes by instant)."""
    return column_prefix(table, column) + key_suffix(key)


def column_prefix(table: str, column: str) -> bytes:
    """The part of `associated_data` that names the cell's table and column (the same for every row)."""
    return AAD_LABEL + b"".join(len(part).to_bytes(4, "big") + part for part in (table.encode(), column.encode()))


def key_suffix(key: Sequence[Any]) -> bytes:
    """The part of `associated_data` that names the row: computed once per row, shared by its columns."""
    return b"".join(len(part).to_bytes(4, "big") + part for part in map(_key_part, key))


def _key_part(value: Any) -> bytes:
    if type(value) is int:  # the common key; the same text `blind.exact_number` gives, without a Decimal
        digits = str(abs(value)).rstrip("0")
        if not digits:
            return b"n0"
        return f"n{'-' if value < 0 else ''}{digits}e{len(str(abs(value))) - len(digits)}".encode()
    if isinstance(value, bool):
        return b"b1" if value else b"b0"
    if isinstance(value, int | float | Decimal):
        return b"n" + blind.exact_number(value).encode()
    if isinstance(value, datetime):
        return b"T" + str(blind.instant(value)).encode()
    if isinstance(value, date):
        return b"d" + value.isoformat().encode()
    if isinstance(value, time):
        return b"t" + value.isoformat(timespec="microseconds").encode()
    return b"s" + str(value).encode()


@dataclass(frozen=True, eq=False)
class FieldCipher:
    """Encrypts, decrypts, blind-indexes and rotates the values of one protected field.

    `blind_keys` holds the current index key first, then those of previous keys (raw-key fields) so lookups
    stay correct while rotation runs (`search_terms`). For a searchable KMS field, `wrapped_blind_key` is
    the blob to persist, and `blind_key_is_new` says it was made by this build (store it)."""

    table: str
    field: FieldSpec
    engine: Engine
    blind_keys: tuple[bytes, ...] = dataclasses.field(default=(), repr=False)
    wrapped_blind_key: bytes | None = dataclasses.field(default=None, repr=False)
    blind_key_is_new: bool = False

    @property
    def searchable(self) -> bool:
        return bool(self.blind_keys)

    def encrypt(self, value: Any, aad: bytes) -> bytes | None:
        """A column value (as `api/values.py` converts it) → stored bytes; None stays None."""
        return None if value is None else self.engine.encrypt(codec.encode(value), aad)

    def decrypt(self, stored: bytes | None, aad: bytes) -> Any:
        """Stored bytes → the value given to `encrypt`, exactly; raises `DecryptionFailed`."""
        return None if stored is None else codec.decode(self.engine.decrypt(bytes(stored), aad))

    def blind(self, value: Any) -> bytes | None:
        """The blind index to store beside the ciphertext (current key); None when not searchable or null."""
        if value is None or not self.blind_keys:
            return None
        return blind.index(self.blind_keys[0], self._normalised(value))

    def search_terms(self, value: Any) -> tuple[bytes, ...]:
        """Every index `value` may be stored under while a rotation runs (current key first): filter with
        `blind_column IN (...)`. Empty when not searchable or null (filter `IS NULL` on the value column)."""
        if value is None:
            return ()
        normalised = self._normalised(value)
        return tuple(dict.fromkeys(blind.index(key, normalised) for key in self.blind_keys))

    def needs_rotation(self, stored: bytes) -> bool:
        """Whether `stored` was written under a key other than the current one (`DecryptionFailed` when it
        is not a stored value at all)."""
        return envelope.key_id(bytes(stored)) != self.engine.key_id

    def reencrypt(self, stored: bytes, aad: bytes) -> bytes:
        """`stored` under the current key (decrypted first, so it must authenticate)."""
        return self.engine.encrypt(self.engine.decrypt(bytes(stored), aad), aad)

    def rotate(self, stored: bytes, aad: bytes) -> tuple[bytes, bytes | None]:
        """The new stored value and its blind index under the current keys: what a rotation job writes."""
        plaintext = self.engine.decrypt(bytes(stored), aad)
        return self.engine.encrypt(plaintext, aad), self.blind(codec.decode(plaintext))

    def _normalised(self, value: Any) -> bytes:
        return blind.normalise(self.field.type, value, uuid=self.field.is_uuid)
