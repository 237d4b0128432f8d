"""Protected fields of one table: how they are stored, sealed on write, opened on read and compared.

A protected field is a binary column holding `generator.crypto`'s self-describing ciphertext; a searchable
one also has a blind-index column (`blind_column_name`), indexed, holding an HMAC of the normalised value.
Encryption is not a `TypeDecorator`: the associated data binds each value to its row's primary key, which a
type never sees, so rows are sealed and opened here, where the whole row is at hand. Plans call `seal` on
every row they write and `open` on every row they read, so no route can store or return plaintext by
forgetting a step.

Filters reach a protected field only as equality (`eq`, `in`, through the blind index) and `is.null`; the
query grammar refuses everything else with a 400 saying why, so this module only builds those conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, LargeBinary

from generator.crypto.cipher import FieldCipher, column_prefix, key_suffix
from generator.crypto.errors import DecryptionFailed
from generator.errors import Problem
from generator.models.columns import blind_column_name
from generator.payload.specs import ResourceSpec


def storage_columns(resource: ResourceSpec) -> list[Column[Any]]:
    """The blind-index columns a table needs besides its fields' own (the value columns are binary)."""
    return [Column(blind_column_name(f.name), LargeBinary(32), nullable=True, index=True)
            for f in resource.fields if f.protected and f.searchable]


class Protection:
    """The protected fields of one table, with their ciphers; a plan holds one when the table has any."""

    def __init__(self, resource: ResourceSpec, ciphers: Mapping[str, FieldCipher]) -> None:
        self.table = resource.name
        self.key_names = tuple(resource.primary_key)
        self.ciphers = dict(ciphers)
        self.blind_names = {name: blind_column_name(name) for name, c in self.ciphers.items() if c.searchable}
        # (field, cipher, associated-data prefix): the row's key suffix is computed once and shared
        self.fields = [(name, cipher, column_prefix(self.table, name)) for name, cipher in self.ciphers.items()]

    def seal(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row to write: protected values encrypted for this row's key, blind indexes beside them. The key
        must be complete (drawn from the sequence first for database-assigned keys)."""
        sealed = dict(row)
        # a key part left out stays out: the INSERT then fails on it (a 400 naming the field), not this
        suffix = key_suffix([row.get(name) for name in self.key_names])
        for name, cipher, prefix in self.fields:
            if name not in row:
                continue
            value = row[name]
            sealed[name] = cipher.encrypt(value, prefix + suffix)
            if name in self.blind_names:
                sealed[self.blind_names[name]] = cipher.blind(value)
        return sealed

    def seal_changes(self, key: Sequence[Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """Column values of an update of one row (PUT, PATCH): `changes` without its key fields."""
        return {k: v for k, v in self.seal({**changes, **dict(zip(self.key_names, key, strict=True))}).items()
                if k not in self.key_names or k in changes}

    def open(self, row: dict[str, Any]) -> dict[str, Any]:
        """Decrypt a row read from the table, in place. A value that does not decrypt is a 500 naming the
        field: wrong key after a restart, tampered bytes, or a ciphertext moved from another row."""
        suffix = key_suffix([row[name] for name in self.key_names])
        for name, cipher, prefix in self.fields:
            stored = row.get(name)
            if stored is None:
                continue
            try:
                row[name] = cipher.decrypt(stored, prefix + suffix)
            except DecryptionFailed:
                raise Problem(500, "Decryption failed",
                              f"A stored value of {self.table}.{name} could not be decrypted: the key configured "
                              "for it is not the one it was written with, or the stored bytes were changed or "
                              "moved from another row. Nothing is returned in its place.") from None
        return row
