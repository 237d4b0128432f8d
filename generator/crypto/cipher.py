"""`FieldCipher`: the one object the data plane calls per protected field.

Associated data binds each ciphertext to its table, column and row key (`associated_data`), so a value
copied into another row or column fails with `DecryptionFailed`. NULL stays NULL (not encrypted): whether a
protected field is set is visible, its value is not."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cached_property
from typing import Any, Protocol

from generator.crypto import blind, codec, envelope
from generator.payload.specs import FieldSpec

AAD_LABEL = b"drg aad v1"


class Engine(Protocol):
    """What both engines offer (`AesGcmEngine`, `KmsEngine`). The `_many` forms take the associated data as
    one prefix (the column's) and a suffix per value (its row's), and give what the single forms would."""

    key_id: bytes

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def decrypt(self, stored: bytes, aad: bytes) -> bytes: ...

    def encrypt_many(self, plaintexts: Sequence[bytes], prefix: bytes, suffixes: Sequence[bytes]) -> list[bytes]: ...

    def decrypt_many(self, stored: Sequence[bytes | None], prefix: bytes, suffixes: Sequence[bytes]
                     ) -> list[bytes | None]: ...


def associated_data(table: str, column: str, key: Sequence[Any]) -> bytes:
    """The associated data of one stored value: table, column and the row's primary key values, each
    length-prefixed; key values by type and exact value (1 and Decimal("1.0") alike, datetimes by instant)."""
    return column_prefix(table, column) + key_suffix(key)


def column_prefix(table: str, column: str) -> bytes:
    """The part of `associated_data` that names the cell's table and column (the same for every row)."""
    return AAD_LABEL + b"".join(len(part).to_bytes(4, "big") + part for part in (table.encode(), column.encode()))


_LENGTHS = [size.to_bytes(4, "big") for size in range(64)]  # length prefixes of short key parts, made once


def key_suffix(key: Sequence[Any]) -> bytes:
    """The part of `associated_data` that names the row: computed once per row, shared by its columns."""
    if len(key) == 1:  # the usual key: no generator, no join
        part = _key_part(key[0])
        size = len(part)
        return (_LENGTHS[size] if size < len(_LENGTHS) else size.to_bytes(4, "big")) + part
    return b"".join(len(part).to_bytes(4, "big") + part for part in map(_key_part, key))


def _key_part(value: Any) -> bytes:
    if type(value) is int:  # the common key; the same text `blind.exact_number` gives, without a Decimal
        if value > 0 and value % 10:  # no trailing zero: the digits as they are, exponent 0
            return b"n%de0" % value
        whole = str(value).lstrip("-")
        digits = whole.rstrip("0")
        if not digits:
            return b"n0"
        return ("n-" if value < 0 else "n").encode() + f"{digits}e{len(whole) - len(digits)}".encode()
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

    @cached_property
    def aad_prefix(self) -> bytes:
        """The associated data's column part: `associated_data(table, field, key) == aad_prefix + key_suffix(key)`."""
        return column_prefix(self.table, self.field.name)

    @cached_property
    def _normalised(self) -> Callable[[Any], bytes]:
        return blind.normaliser(self.field.type, uuid=self.field.is_uuid)

    @cached_property
    def _indexes(self) -> tuple[Callable[[bytes], bytes], ...]:
        return tuple(blind.indexer(key) for key in self.blind_keys)

    @cached_property
    def _index(self) -> Callable[[bytes], bytes]:
        return self._indexes[0]

    def encrypt(self, value: Any, aad: bytes) -> bytes | None:
        """A column value (as `api/values.py` converts it) → stored bytes; None stays None."""
        return None if value is None else self.engine.encrypt(codec.encode(value), aad)

    def decrypt(self, stored: bytes | None, aad: bytes) -> Any:
        """Stored bytes → the value given to `encrypt`, exactly; raises `DecryptionFailed`."""
        return None if stored is None else codec.decode(self.engine.decrypt(bytes(stored), aad))

    def encrypt_many(self, values: Sequence[Any], suffixes: Sequence[bytes]) -> list[bytes | None]:
        """`encrypt(value, aad_prefix + suffix)` for each value of a column and its row's `key_suffix`."""
        encode = codec.encode
        if None not in values:
            return list(self.engine.encrypt_many([encode(v) for v in values], self.aad_prefix, suffixes))
        at = [i for i, value in enumerate(values) if value is not None]
        sealed: list[bytes | None] = [None] * len(values)
        found = self.engine.encrypt_many([encode(values[i]) for i in at], self.aad_prefix, [suffixes[i] for i in at])
        for i, stored in zip(at, found, strict=True):
            sealed[i] = stored
        return sealed

    def decrypt_many(self, stored: Sequence[bytes | None], suffixes: Sequence[bytes]) -> list[Any]:
        """`decrypt(value, aad_prefix + suffix)` for each stored value of a column and its row's `key_suffix`;
        `DecryptionFailed` if any fails."""
        decode = codec.decode
        return [None if p is None else decode(p) for p in self.engine.decrypt_many(stored, self.aad_prefix, suffixes)]

    def blind(self, value: Any) -> bytes | None:
        """The blind index to store beside the ciphertext (current key); None when not searchable or null."""
        if value is None or not self.blind_keys:
            return None
        return self._index(self._normalised(value))

    def blind_many(self, values: Sequence[Any]) -> list[bytes | None]:
        """`blind` of each value of a column."""
        if not self.blind_keys:
            return [None] * len(values)
        index, normalised = self._index, self._normalised
        return [None if value is None else index(normalised(value)) for value in values]

    def search_terms(self, value: Any) -> tuple[bytes, ...]:
        """Every index `value` may be stored under while a rotation runs (current key first): filter with
        `blind_column IN (...)`. Empty when not searchable or null (filter `IS NULL` on the value column)."""
        if value is None:
            return ()
        normalised = self._normalised(value)
        return tuple(dict.fromkeys(index(normalised) for index in self._indexes))

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
