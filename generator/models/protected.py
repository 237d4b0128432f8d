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

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Column, LargeBinary

from generator.crypto.cipher import FieldCipher, key_suffix
from generator.crypto.errors import DecryptionFailed
from generator.errors import Problem
from generator.models.columns import blind_column_name
from generator.payload.specs import ResourceSpec

SEAL_CHUNK = 500  # rows sealed at a time while COPY streams (about 5 ms of encryption each)


def storage_columns(resource: ResourceSpec) -> list[Column[Any]]:
    """The blind-index columns a table needs besides its fields' own (the value columns are binary)."""
    return [Column(blind_column_name(f.name), LargeBinary(32), nullable=True, index=True)
            for f in resource.fields if f.protected and f.searchable]


class Protection:
    """The protected fields of one table, with their ciphers; a plan holds one when the table has any.

    Rows are sealed and opened column by column (`seal_rows`, `open_rows`): each row's key part of the
    associated data is computed once and shared by its columns, and each column's cipher runs one loop over
    the rows, so a page of 100 rows × 5 fields or a bulk write of 10,000 rows pays OpenSSL's time per value
    and little else."""

    def __init__(self, resource: ResourceSpec, ciphers: Mapping[str, FieldCipher]) -> None:
        self.table = resource.name
        self.key_names = tuple(resource.primary_key)
        self.ciphers = dict(ciphers)
        self.blind_names = {name: blind_column_name(name) for name, c in self.ciphers.items() if c.searchable}
        # (field, cipher, its blind-index column or None)
        self.fields = [(name, cipher, self.blind_names.get(name)) for name, cipher in self.ciphers.items()]

    def suffixes(self, rows: Sequence[Mapping[str, Any]]) -> list[bytes]:
        """Each row's key part of the associated data. A key part left out stays out: the write then fails
        on it (a 400 naming the field), not this."""
        if len(self.key_names) == 1:
            name = self.key_names[0]
            return [key_suffix((row.get(name),)) for row in rows]
        return [key_suffix([row.get(name) for name in self.key_names]) for row in rows]

    def seal(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row to write: protected values encrypted for this row's key, blind indexes beside them. The key
        must be complete (drawn from the sequence first for database-assigned keys)."""
        sealed = dict(row)
        suffix = self.suffixes((row,))[0]
        for name, cipher, blind_name in self.fields:
            if name in row:
                value = row[name]
                sealed[name] = cipher.encrypt(value, cipher.aad_prefix + suffix)
                if blind_name is not None:
                    sealed[blind_name] = cipher.blind(value)
        return sealed

    def seal_rows(self, rows: Sequence[Mapping[str, Any]], *, in_place: bool = False) -> list[dict[str, Any]]:
        """`seal` of each row (a field a row leaves out stays out of it): new dicts, or with `in_place` the
        rows themselves (dicts the caller owns)."""
        sealed = cast(list[dict[str, Any]], rows) if in_place else [dict(row) for row in rows]
        suffixes = self.suffixes(rows)
        for name, cipher, blind_name in self.fields:
            if all(name in row for row in rows):
                at = None
                values = [row[name] for row in rows]
                keys = suffixes
            else:
                at = [i for i, row in enumerate(rows) if name in row]
                values = [rows[i][name] for i in at]
                keys = [suffixes[i] for i in at]
            columns = [(name, cipher.encrypt_many(values, keys))]
            if blind_name is not None:
                columns.append((blind_name, cipher.blind_many(values)))
            for column, found in columns:
                for row, value in zip(sealed if at is None else [sealed[i] for i in at], found, strict=True):
                    row[column] = value
        return sealed

    def sealing(self, rows: list[dict[str, Any]], chunk: int = SEAL_CHUNK) -> Iterator[dict[str, Any]]:
        """`seal_rows(rows, in_place=True)`, a chunk at a time, for a consumer that streams them (COPY)."""
        for start in range(0, len(rows), chunk):
            yield from self.seal_rows(rows[start:start + chunk], in_place=True)

    def sealed_names(self, names: Sequence[str]) -> tuple[str, ...]:
        """The columns a sealed row holds when the row held `names`: those, and the blind indexes of them."""
        return (*names, *(blind for name, _, blind in self.fields if blind is not None and name in names))

    def seal_changes(self, key: Sequence[Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """Column values of an update of one row (PUT, PATCH): `changes` without its key fields."""
        return {k: v for k, v in self.seal({**changes, **dict(zip(self.key_names, key, strict=True))}).items()
                if k not in self.key_names or k in changes}

    def open(self, row: dict[str, Any]) -> dict[str, Any]:
        """Decrypt a row read from the table, in place (see `open_rows`)."""
        suffix = self.suffixes((row,))[0]
        for name, cipher, _ in self.fields:
            stored = row.get(name)
            if stored is not None:
                try:
                    row[name] = cipher.decrypt(stored, cipher.aad_prefix + suffix)
                except DecryptionFailed:
                    raise self._failed(name) from None
        return row

    def open_rows(self, rows: Sequence[dict[str, Any]], only: Collection[str] | None = None) -> None:
        """Decrypt rows read from the table, in place. A value that does not decrypt is a 500 naming the
        field: wrong key after a restart, tampered bytes, or a ciphertext moved from another row.

        `only`: the fields the response shows (a `select`); other protected fields are removed from the
        rows, not decrypted, so a page that selects two of five protected fields pays for two."""
        if not rows:
            return
        suffixes = self.suffixes(rows)
        for name, cipher, _ in self.fields:
            if only is not None and name not in only:
                for row in rows:
                    row.pop(name, None)
                continue
            try:
                values = cipher.decrypt_many([row.get(name) for row in rows], suffixes)
            except DecryptionFailed:
                raise self._failed(name) from None
            for row, value in zip(rows, values, strict=True):
                if value is not None or name in row:
                    row[name] = value

    def _failed(self, name: str) -> Problem:
        return Problem(500, "Decryption failed",
                       f"A stored value of {self.table}.{name} could not be decrypted: the key configured for it is "
                       "not the one it was written with, or the stored bytes were changed or moved from another "
                       "row. Nothing is returned in its place.")
