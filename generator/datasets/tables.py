"""The platform's index of datasets and their audit lines, on a MetaData of this package's own. They belong to
the platform's migrations (generator/migrations: a change here needs a revision there); `ensure_tables` runs
them when the package is mounted, in case start-up has not.

The metadata repository bucket holds each dataset's metadata object (the seed's source of truth); the row in
`drg_datasets` is its index (listing, data-product links) and is written in the same request."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, Column, DateTime, Engine, Index, Integer, MetaData, String, Table, Text

from generator.migrations import upgrade
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
    """Bring the platform's tables, these included, to the newest migration (processes take turns)."""
    upgrade(engine)


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
