"""The platform's index of datasets and their audit lines, on a MetaData of this package's own: created with
`CREATE TABLE IF NOT EXISTS` when the package is mounted (`ensure_tables`), not at the runtime's boot.

The metadata repository bucket holds each dataset's metadata object (the seed's source of truth); the row in
`drg_datasets` is its index (listing, data-product links) and is written in the same request."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Boolean, Column, DateTime, Engine, Index, Integer, MetaData, String, Table, Text, text

from generator.models.engine import for_writes
from generator.models.tables import NAMING

metadata = MetaData(naming_convention=NAMING)
NAME = 200


def now() -> datetime:
    return datetime.now(UTC)


datasets = Table(
    "drg_datasets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account", String(NAME), nullable=False),
    Column("group_name", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("repository", String(63), nullable=False),
    Column("org", String(NAME), nullable=False),
    Column("derivative", Boolean, nullable=False),
    Column("finalized", Boolean, nullable=False, default=False),
    Column("metadata", Text, nullable=False),  # the metadata object, as JSON text (a copy of the bucket's)
    Column("created_at", DateTime(timezone=True), nullable=False, default=now),
    Column("modified_at", DateTime(timezone=True), nullable=False, default=now),
    Index("ix_drg_datasets_account_group", "account", "group_name", "created_at"),
    Index("ix_drg_datasets_name", "name"),
)

dataset_logs = Table(
    "drg_dataset_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(36), nullable=False),  # no foreign key: the lines outlive the dataset
    Column("at", DateTime(timezone=True), nullable=False, default=now),
    Column("actor", String(NAME), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_drg_dataset_logs_dataset", "dataset", "id"),
)


def ensure_tables(engine: Engine) -> None:
    """Create the tables if missing; processes starting at once on PostgreSQL take turns (advisory lock)."""
    with for_writes(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(b"drg-datasets").digest()[:8], "big", signed=True)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        metadata.create_all(connection, checkfirst=True)


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
