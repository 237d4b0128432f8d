"""The metadata graph's tables, on a MetaData of this package's own. They belong to the platform's migrations
(generator/migrations: a change here needs a revision there); `ensure_tables` runs them when the package is
mounted, in case start-up has not.

- `drg_md_entities`: one row per entity (its URN, type, and whether it is soft-deleted).
- `drg_md_aspects`: the latest version of each (entity, aspect): what reads use, and the row a writer locks
  (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers anyway).
- `drg_md_aspect_versions`: every version ever written (its time in epoch ms), the latest included;
  (urn, aspect, version) is the primary key, so two writers can never both create version N+1.
- `drg_md_relationships`: edges derived from aspects (`OwnedBy`, `Contains`, `IsPartOf`, `DownstreamOf`),
  rebuilt for an (entity, aspect) whenever that aspect is written."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from generator.migrations import upgrade
from generator.models.tables import NAMING

metadata = MetaData(naming_convention=NAMING)
URN = 1000
NAME = 200


def now() -> datetime:
    return datetime.now(UTC)


def now_millis() -> int:
    """Aspect versions carry their time as epoch milliseconds, as the API shows it (and cheap to read back)."""
    return int(datetime.now(UTC).timestamp() * 1000)


entities = Table(
    "drg_md_entities",
    metadata,
    Column("urn", String(URN), primary_key=True),
    Column("entity_type", String(NAME), nullable=False),
    Column("removed", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=now),
)


def _aspect_columns() -> list[Column]:
    return [
        Column("value", Text, nullable=False),  # JSON text, without `__type`
        Column("created_ms", BigInteger, nullable=False),  # epoch milliseconds
        Column("actor", String(URN), nullable=False),
        Column("run_id", String(NAME), nullable=False),
        Column("system", Boolean, nullable=False, default=False),  # written by the generator
    ]


aspects = Table(
    "drg_md_aspects",
    metadata,
    Column("urn", String(URN), primary_key=True),
    Column("aspect", String(NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    *_aspect_columns(),
)

aspect_versions = Table(
    "drg_md_aspect_versions",
    metadata,
    Column("urn", String(URN), primary_key=True),
    Column("aspect", String(NAME), primary_key=True),
    Column("version", Integer, primary_key=True),
    *_aspect_columns(),
)

relationships = Table(
    "drg_md_relationships",
    metadata,
    Column("source", String(URN), primary_key=True),
    Column("aspect", String(NAME), primary_key=True),
    Column("relationship_type", String(NAME), primary_key=True),
    Column("destination", String(URN), primary_key=True),
    Index("ix_drg_md_relationships_destination", "destination", "relationship_type"),
)


def ensure_tables(engine: Engine) -> None:
    """Bring the platform's tables, these included, to the newest migration (processes take turns)."""
    upgrade(engine)
