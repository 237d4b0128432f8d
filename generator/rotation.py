"""Key rotation (`drg rotate-keys`): re-encrypt every protected value not stored under its field's current key,
and rewrite its blind index, while the service keeps serving.

It works on the generation the service serves (the newest `drg_generations` row) with the same settings and
environment, so it sees the keys the service sees. Each table is walked in primary-key order, in batches of
`batch_size` rows; a batch is one short write transaction (rows locked `FOR UPDATE` on PostgreSQL; SQLite's
BEGIN IMMEDIATE holds the write lock), so readers and writers wait at most one batch. Only rows holding a
value whose key id (stored bytes 2..9, `generator/crypto/README.md`) differs from the current one are
selected (`substr` on BLOB and BYTEA alike): stopping at any point (Ctrl-C, SIGKILL) and running again picks
up what is left, and a finished rotation finds nothing to do. The blind-index keys of searchable KMS fields
(`drg_blind_keys`) still wrapped under an older KMS key are re-wrapped first (the key, so every index, stays).

A value that does not decrypt under any configured key is left as it is and counted as failed (the command
then exits 1): rotation never writes what it could not read. While rotation runs, reads decrypt under either
key and blind-index filters search both indexes (`FieldCipher.search_terms`), so nothing goes missing."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, func, inspect, or_, select, tuple_, update

from generator.codec import loads
from generator.crypto.build import Ciphers
from generator.crypto.cipher import FieldCipher, associated_data
from generator.crypto.errors import DecryptionFailed
from generator.errors import GeneratorError
from generator.models import blind_keys, ddl
from generator.models.columns import blind_column_name
from generator.models.engine import for_writes
from generator.models.tables import GENERATIONS_TABLE, build_metadata
from generator.payload import parse_payload
from generator.payload.specs import ResourceSpec

BATCH_SIZE = 500
KEY_ID = (3, 8)  # SQL substr(value, 3, 8): bytes 2..9 of the stored value, 1-based


class NothingServed(GeneratorError):
    """No generation is recorded in the database: there is nothing to rotate."""


@dataclass
class TableRotation:
    """What rotation did (or, dry, would do) to one table."""

    table: str
    rows: int = 0  # rows rewritten (dry run: rows holding a value to rotate)
    values: int = 0  # values re-encrypted
    failed: int = 0  # values that decrypt under no configured key: left as they are
    batches: int = 0


@dataclass
class Rotation:
    tables: list[TableRotation] = field(default_factory=list)
    finished: bool = True  # False when stopped by `max_batches`
    # searchable KMS fields whose blind-index key was re-wrapped under the current KMS key (dry run: to be)
    rewrapped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tables)


@dataclass(frozen=True)
class _Plan:
    """One table: its key columns, its protected fields' ciphers, and the condition selecting rows still
    holding a value under another key."""

    table: Table
    keys: tuple[Any, ...]
    ciphers: dict[str, FieldCipher]
    pending: ColumnElement[bool]


def rotate_keys(engine: Engine, *, batch_size: int = BATCH_SIZE, dry_run: bool = False,
                environ: Mapping[str, str] | None = None, max_batches: int | None = None,
                on_batch: Callable[[TableRotation], object] = lambda _: None) -> Rotation:
    """Rotate every table of the served generation; `on_batch` is called after each committed batch (an
    exception it raises stops the rotation there, as an interruption would). `max_batches` stops after that
    many batches in all (`finished` is then False)."""
    plans, ciphers = served_plans(engine, environ)
    result = Rotation(rewrapped=blind_keys.stale(ciphers) if dry_run else blind_keys.rewrap(engine, ciphers))
    budget = [max_batches]
    for plan in plans:
        done = TableRotation(plan.table.name)
        result.tables.append(done)
        if dry_run:
            done.rows = _count_pending(engine, plan)
            continue
        if not _rotate_table(engine, plan, batch_size, done, budget, on_batch):
            result.finished = False
            break
    return result


def served_plans(engine: Engine, environ: Mapping[str, str] | None = None) -> tuple[list[_Plan], Ciphers]:
    """One plan per table with protected fields, from the newest recorded generation; and its ciphers."""
    recorded = ddl.latest(engine) if inspect(engine).has_table(GENERATIONS_TABLE) else None
    if recorded is None:
        raise NothingServed("no generation is recorded in this database: nothing to rotate")
    generation = parse_payload(loads(recorded.payload))
    metadata = build_metadata(generation)
    ciphers = blind_keys.ciphers_for(engine, generation, os.environ if environ is None else environ)
    return [_plan(metadata.tables[r.name], r, ciphers) for r in generation.resources if r.protected_fields], ciphers


def _plan(table: Table, resource: ResourceSpec, ciphers: Ciphers) -> _Plan:
    own = {f.name: ciphers[(resource.name, f.name)] for f in resource.protected_fields}
    stale = [and_(table.c[name].is_not(None), func.substr(table.c[name], *KEY_ID) != cipher.engine.key_id)
             for name, cipher in own.items()]
    return _Plan(table, tuple(table.c[name] for name in resource.primary_key), own, or_(*stale))


def _count_pending(engine: Engine, plan: _Plan) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(plan.table).where(plan.pending)).scalar_one())


def _rotate_table(engine: Engine, plan: _Plan, batch_size: int, done: TableRotation, budget: list[int | None],
                  on_batch: Callable[[TableRotation], object]) -> bool:
    """Batches until the table has no row left to rotate past the last key seen; False when out of budget.

    Walking by key (`key > last`) guarantees progress even past values that fail to decrypt."""
    after: tuple[Any, ...] | None = None
    while True:
        if budget[0] is not None and budget[0] <= 0:
            return False
        with for_writes(engine).begin() as connection:
            rows = connection.execute(_batch_statement(plan, after, batch_size, connection.dialect.name)).all()
            for row in rows:
                _rotate_row(connection, plan, row, done)
        if not rows:
            return True
        after = tuple(rows[-1][: len(plan.keys)])
        done.batches += 1
        if budget[0] is not None:
            budget[0] -= 1
        on_batch(done)


def _batch_statement(plan: _Plan, after: tuple[Any, ...] | None, limit: int, dialect: str) -> Any:
    columns = [plan.table.c[name] for name in plan.ciphers]
    statement = select(*plan.keys, *columns).where(plan.pending)
    if after is not None:
        statement = statement.where(tuple_(*plan.keys) > tuple_(*after) if len(plan.keys) > 1
                                    else plan.keys[0] > after[0])
    statement = statement.order_by(*plan.keys).limit(limit)
    return statement.with_for_update() if dialect == "postgresql" else statement


def _rotate_row(connection: Any, plan: _Plan, row: Sequence[Any], done: TableRotation) -> None:
    key = tuple(row[: len(plan.keys)])
    changes: dict[str, Any] = {}
    for name, stored in zip(plan.ciphers, row[len(plan.keys):], strict=True):
        cipher = plan.ciphers[name]
        if stored is None or not cipher.needs_rotation(stored):
            continue
        try:
            changes[name], index = cipher.rotate(stored, associated_data(plan.table.name, name, key))
        except DecryptionFailed:
            done.failed += 1
            continue
        if cipher.searchable:
            changes[blind_column_name(name)] = index
        done.values += 1
    if changes:
        condition = and_(*(column == value for column, value in zip(plan.keys, key, strict=True)))
        connection.execute(update(plan.table).where(condition).values(changes))
        done.rows += 1
