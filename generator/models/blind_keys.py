"""`drg_blind_keys`: the blind-index keys of searchable `AWS_AES_Engine` fields, kept only wrapped by KMS.

Such a key is random, made once by `build_ciphers` (`cipher.blind_key_is_new`), and must be the same for
every later build (a restart, another worker or replica), or equality filters stop finding rows written
before. The first process to store a field's key wins (`INSERT ... ON CONFLICT DO NOTHING`); one that lost
the race rebuilds with the stored key (`ciphers_for` does both). Raw-key fields derive their index keys from
their keys and need nothing here.

The table belongs to the platform's migrations (generator/migrations, revision 0001); `ensure_table` runs
them before first use, so it exists in a database no start-up has upgraded yet."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, Engine, LargeBinary, MetaData, PrimaryKeyConstraint, String, Table, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from generator.crypto import envelope
from generator.crypto.build import Ciphers, build_ciphers
from generator.crypto.kms import KmsEngine
from generator.migrations import upgrade
from generator.models.engine import for_writes
from generator.payload.specs import Generation

metadata = MetaData()  # changing the table needs a revision in generator/migrations/versions
blind_keys = Table(
    "drg_blind_keys", metadata,
    Column("table_name", String(255), nullable=False),
    Column("field", String(255), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    PrimaryKeyConstraint("table_name", "field", name="pk_drg_blind_keys"),
)


def ensure_table(engine: Engine) -> None:
    """Bring the platform's tables, this one included, to the newest migration (nothing once done, per engine
    and process)."""
    upgrade(engine)


def load(engine: Engine) -> dict[tuple[str, str], bytes]:
    """Every stored wrapped key: `{(table, field): blob}`, as `build_ciphers(wrapped_blind_keys=...)` takes."""
    ensure_table(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(blind_keys.c.table_name, blind_keys.c.field, blind_keys.c.wrapped))
        return {(table, name): bytes(wrapped) for table, name, wrapped in rows}


def store_new(engine: Engine, ciphers: Ciphers) -> bool:
    """Store the key of every cipher that made a new one; True if another process had stored a key for any
    of those fields first (then rebuild with `load(engine)`: the stored key is the one in use)."""
    new = [{"table_name": table, "field": name, "wrapped": cipher.wrapped_blind_key}
           for (table, name), cipher in ciphers.items() if cipher.blind_key_is_new]
    if not new:
        return False
    ensure_table(engine)
    with for_writes(engine).begin() as connection:
        dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = (dialect_insert(blind_keys).on_conflict_do_nothing(index_elements=["table_name", "field"])
                     .returning(blind_keys.c.field))  # a row back per key stored (rowcount is -1 on psycopg)
        stored = sum(len(connection.execute(statement.values(row)).all()) for row in new)
    return stored < len(new)


def stale(ciphers: Ciphers) -> list[tuple[str, str]]:
    """Searchable KMS fields whose stored blind-index key is wrapped under a KMS key other than the current."""
    return [where for where, cipher in ciphers.items() if cipher.wrapped_blind_key is not None
            and envelope.key_id(cipher.wrapped_blind_key) != cipher.engine.key_id]


def rewrap(engine: Engine, ciphers: Ciphers) -> list[tuple[str, str]]:
    """Re-wrap every `stale` key under its field's current KMS key (the key itself, and so every blind
    index, stays the same): do it before the old KMS key is disabled. Returns the fields re-wrapped."""
    done = stale(ciphers)
    for table, name in done:
        cipher = ciphers[(table, name)]
        assert isinstance(cipher.engine, KmsEngine) and cipher.wrapped_blind_key is not None
        blob = cipher.engine.rewrap_key(cipher.wrapped_blind_key)
        with for_writes(engine).begin() as connection:
            connection.execute(update(blind_keys).where(blind_keys.c.table_name == table, blind_keys.c.field == name)
                               .values(wrapped=blob))
    return done


def has_searchable(generation: Generation) -> bool:
    return any(f.searchable for r in generation.resources for f in r.protected_fields)


def ciphers_for(engine: Engine, generation: Generation, environ: Mapping[str, str] | None = None) -> Ciphers:
    """`build_ciphers` with the stored blind-index keys; new ones stored, and a lost race rebuilt with the
    winner's. A generation without searchable protected fields does not touch the database."""
    if not has_searchable(generation):
        return build_ciphers(generation, environ)
    ciphers = build_ciphers(generation, environ, wrapped_blind_keys=load(engine))
    if store_new(engine, ciphers):
        ciphers = build_ciphers(generation, environ, wrapped_blind_keys=load(engine))
    return ciphers
