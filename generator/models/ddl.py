"""Apply a generation in one transaction, or verify that the database already matches it.

Missing tables are created; tables the payload declares that already exist are evolved (`evolution`:
alembic's diff as structured changes; destructive ones only with `allow_destructive`, and never one the
data forbids); tables from earlier generations that the payload no longer declares are left alone. The
payload is recorded in `drg_generations` inside the same transaction as the DDL, so a crash leaves either
everything or nothing.

Generations race across processes (replicas, workers) by optimistic concurrency: the caller names the newest
generation it started from (`base_id`), and a transaction that finds another generation recorded since, or
being applied right now, raises `GenerationRaced` and changes nothing: the first to commit wins. On
PostgreSQL the transaction also notifies `CHANNEL` with the new generation's id; NOTIFY is delivered at
commit and only then, so a generation that rolls back (or whose process dies) never announces itself.

SQLite recreates a table to change a column (alembic's batch mode), and dropping the old copy would
cascade to the rows that refer to it (association tables delete on cascade) while foreign keys are on.
So a generation that recreates tables runs with foreign keys off on its connection (SQLite only lets them
be switched outside a transaction), checks every foreign key with `PRAGMA foreign_key_check` before it
commits, and switches them back on before the connection returns to the pool."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_mock_engine, func, insert, select, text

from generator.errors import GeneratorError
from generator.migrations import upgrade
from generator.migrations.run import DEFAULT_LOCK_TIMEOUT_MS
from generator.models import evolution
from generator.models.compare import SchemaConflict, differences
from generator.models.engine import for_writes
from generator.models.evolution import Change, EvolutionRefused
from generator.models.tables import generations

__all__ = ["SchemaConflict", "EvolutionRefused", "GenerationRaced", "Change", "apply", "verify", "plan"]

Checks = Callable[[Connection], list[Change]]
CHANNEL = "drg_generation"  # the PostgreSQL NOTIFY channel; each notification's payload is a generation id


class GenerationRaced(GeneratorError):
    """Another generation was recorded after `base_id` (its id and digest are given), or is being applied
    right now (both None): this one changed nothing."""

    def __init__(self, newest_id: int | None = None, digest: str | None = None) -> None:
        what = f"generation #{newest_id} was recorded" if newest_id else "another generation is being applied"
        super().__init__(f"{what} while this one was being applied")
        self.newest_id, self.digest = newest_id, digest


@dataclass(frozen=True)
class Applied:
    created: list[str]
    generation_id: int
    changes: list[Change] = field(default_factory=list)  # everything run, tables created included


@dataclass(frozen=True)
class Described:
    """A generation as `GET /generator` and its history show it (no payload)."""

    id: int
    digest: str
    created_at: datetime | None
    created_by: str | None

    def as_json(self) -> dict[str, Any]:
        when = self.created_at
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # SQLite keeps the UTC time it was given, without its offset
        return {"version": self.id, "hash": self.digest, "created_at": when and when.isoformat(),
                "created_by": self.created_by}


@dataclass(frozen=True)
class Recorded:
    """A row of `drg_generations`: the id orders generations across every process sharing the database."""

    id: int
    digest: str
    payload: str


def ensure_platform_tables(engine: Engine, *, lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS) -> None:
    """Bring the platform's own tables to the newest migration (generator/migrations): created on a fresh
    database, adopted and upgraded on one an earlier release made. Processes booting at once take turns
    (one transaction under an advisory lock); at head it is one read. Its DDL waits at most
    `lock_timeout_ms` for readers (start-up passes the settings' DDL_LOCK_TIMEOUT_MS)."""
    upgrade(engine, lock_timeout_ms=lock_timeout_ms)


def _lock_key(name: bytes) -> int:
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)


def apply(engine: Engine, metadata: MetaData, *, digest: str, payload_text: str, lock_timeout_ms: int,
          base_id: int | None = None, before_commit: Callable[[], object] = lambda: None,
          in_transaction: Callable[[Connection], object] = lambda _: None, allow_destructive: bool = False,
          created_by: str | None = None, matching: frozenset[str] = frozenset(), checks: Checks = lambda _: [],
          ) -> Applied:
    """Create what is missing, evolve what differs and record the payload, all in one transaction; raise
    `EvolutionRefused` (a `SchemaConflict`) for changes that may not run, or `GenerationRaced` if `base_id`
    is given and is no longer the newest generation (None: wait for any generation in progress, then apply
    on top of whatever it recorded).

    `in_transaction` writes what else belongs to the generation (its data-product ownership, audit) on the
    same connection, last. `checks` adds changes without DDL that the plan must weigh too (validation rules
    narrowed over rows that break them: `rules.rule_changes`), read in the same transaction. `before_commit`
    waits for what must succeed before anything commits (the app build): it runs once the plan is known to
    be allowed and before any DDL, so no table lock is held while it waits. If either raises, everything
    rolls back. `matching` names tables known to match the database already (`evolution.plan`)."""
    recreates = engine.dialect.name == "sqlite" and any(
        c.recreates_on_sqlite for c in plan(engine, metadata, matching))
    with for_writes(engine).connect() as connection, _sqlite_foreign_keys_off(connection, recreates):
        with connection.begin():
            _serialise_generations(connection, lock_timeout_ms, base_id)
            changes = evolution.plan(connection, metadata, matching) + checks(connection)
            refused = evolution.refused(changes, allow_destructive)
            if refused:
                raise EvolutionRefused(refused, changes)
            if not recreates and connection.dialect.name == "sqlite" and any(c.recreates_on_sqlite for c in changes):
                raise GenerationRaced()  # the tables changed since `plan` above: another writer got in between
            # Before the DDL, not after it: an ALTER holds its table's ACCESS EXCLUSIVE lock until commit, so
            # readers of the table would otherwise queue behind the whole wait (an app build takes seconds)
            before_commit()
            created = {c.table for c in changes if c.kind == "add_table"}
            _create(connection, metadata, [t for t in metadata.sorted_tables if t.name in created])
            evolution.apply(connection, metadata, changes)
            if recreates and (broken := evolution.foreign_key_violations(connection)):
                raise SchemaConflict(broken)
            generation_id = _record(connection, digest, payload_text, created_by)
            in_transaction(connection)
            return Applied(created=[t.name for t in metadata.sorted_tables if t.name in created],
                           generation_id=generation_id, changes=changes)


def plan(engine: Engine, metadata: MetaData, matching: frozenset[str] = frozenset(), checks: Checks = lambda _: [],
         *, tables: bool = True) -> list[Change]:
    """What `apply` would change, read without writing anything (`POST /generator/plan`); `tables=False`:
    only what `checks` finds (a `touch_database: false` payload, whose tables are verified instead)."""
    with engine.connect() as connection:
        return (evolution.plan(connection, metadata, matching) if tables else []) + checks(connection)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection, off: bool) -> Iterator[None]:
    """Foreign keys off on this SQLite connection for one transaction, and on again whatever happens."""
    if not off:
        yield
        return
    raw = connection.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")  # before BEGIN: SQLite ignores it inside a transaction
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _create(connection: Connection, metadata: MetaData, tables: list[Table]) -> None:
    """CREATE the tables. PostgreSQL gets the whole script in one round trip: a table of 20 described
    fields is 21 statements (CREATE TABLE and COMMENT ON), so 100 tables would otherwise be 2,100 trips."""
    if connection.dialect.name != "postgresql":
        metadata.create_all(connection, tables=tables, checkfirst=False)
        return
    script: list[str] = []
    recorder = create_mock_engine(connection.engine.url, lambda ddl, *_, **__: script.append(
        str(ddl.compile(dialect=connection.dialect))))
    metadata.create_all(recorder, tables=tables, checkfirst=False)  # type: ignore[arg-type]
    if script:
        connection.exec_driver_sql(";\n".join(script))


def verify(engine: Engine, metadata: MetaData) -> None:
    """Raise `SchemaConflict` unless every table of `metadata` exists and matches."""
    with engine.connect() as connection:
        found = differences(connection, metadata.sorted_tables)
    if found:
        raise SchemaConflict(found)


def record(engine: Engine, *, digest: str, payload_text: str, lock_timeout_ms: int, base_id: int | None = None,
           in_transaction: Callable[[Connection], object] = lambda _: None, created_by: str | None = None,
           checks: Checks = lambda _: [], allow_destructive: bool = False) -> int:
    """Record a generation whose tables already exist (`touch_database: false`); races as `apply` does, and
    refuses what `checks` finds as `apply` does."""
    with for_writes(engine).begin() as connection:
        _serialise_generations(connection, lock_timeout_ms, base_id)
        changes = checks(connection)
        if refused := evolution.refused(changes, allow_destructive):
            raise EvolutionRefused(refused, changes)
        generation_id = _record(connection, digest, payload_text, created_by)
        in_transaction(connection)
        return generation_id


def _record(connection: Connection, digest: str, payload_text: str, created_by: str | None) -> int:
    values = {"digest": digest, "payload": payload_text, "created_by": created_by}
    generation_id: int = connection.execute(insert(generations).values(**values)).inserted_primary_key[0]
    if connection.dialect.name == "postgresql":  # sent at commit, to every process LISTENing (generator.feed)
        connection.execute(select(func.pg_notify(CHANNEL, str(generation_id))))
    return generation_id


def latest_id(engine: Engine) -> int:
    """The newest generation's id (0 when none): one indexed read, cheap enough to poll."""
    with engine.connect() as connection:
        return connection.execute(select(generations.c.id).order_by(generations.c.id.desc()).limit(1)).scalar() or 0


def latest(engine: Engine) -> Recorded | None:
    with engine.connect() as connection:
        query = select(generations.c.id, generations.c.digest, generations.c.payload)
        row = connection.execute(query.order_by(generations.c.id.desc()).limit(1)).first()
    return None if row is None else Recorded(*row)


SUMMARY = (generations.c.id, generations.c.digest, generations.c.created_at, generations.c.created_by)


def described(engine: Engine, generation_id: int) -> Described | None:
    with engine.connect() as connection:
        row = connection.execute(select(*SUMMARY).where(generations.c.id == generation_id)).first()
    return None if row is None else Described(*row)


def history(engine: Engine, *, offset: int, limit: int) -> tuple[list[Described], int]:
    """Recorded generations newest first, one page of them, and how many there are in all."""
    with engine.connect() as connection:
        rows = connection.execute(select(*SUMMARY).order_by(generations.c.id.desc()).offset(offset).limit(limit))
        page = [Described(*row) for row in rows]
        total = connection.execute(select(func.count()).select_from(generations)).scalar() or 0
    return page, int(total)


def _serialise_generations(connection: Connection, lock_timeout_ms: int, base_id: int | None) -> None:
    """One generation at a time across processes, and DDL never waits forever on readers (PostgreSQL).

    With a `base_id`, a generation in progress elsewhere (the advisory lock is taken) or one committed since
    `base_id` raises `GenerationRaced` at once. SQLite's BEGIN IMMEDIATE has already waited for any other
    writer, so there only the second check applies."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
        key = {"key": _lock_key(b"drg-generation")}
        if base_id is None:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)
        elif not connection.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), key).scalar():
            raise GenerationRaced()
    if base_id is None:
        return
    query = select(generations.c.id, generations.c.digest).order_by(generations.c.id.desc()).limit(1)
    newest = connection.execute(query).first()
    if newest is not None and newest.id != base_id:
        raise GenerationRaced(newest.id, newest.digest)
