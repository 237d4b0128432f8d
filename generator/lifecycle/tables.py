"""The lifecycle engine's own tables (`drg_lc_*`, on their own `MetaData`). They belong to the platform's
migrations (generator/migrations: a change here needs a revision there); `create_tables` runs them when the
system mounts, in case start-up has not.

JSON bodies (descriptors, configurations, results) are JSON columns (JSONB on PostgreSQL). Secrets never
reach these tables: they live in memory for the activity that received them (see executors.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from generator.migrations import upgrade

metadata = MetaData(naming_convention={"ix": "ix_%(table_name)s_%(column_0_name)s",
                                       "pk": "pk_%(table_name)s",
                                       "fk": "fk_%(table_name)s_%(column_0_name)s"})
NAME = 200
Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")


def now() -> datetime:
    return datetime.now(UTC)


def _moment(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


versions = Table(
    "drg_lc_versions", metadata,
    Column("product", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("descriptor", Json, nullable=False),
    Column("frozen", Boolean, nullable=False, default=False),  # an activity ran on it: immutable
    Column("created_at", DateTime(timezone=True), nullable=False, default=now),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=now),
    PrimaryKeyConstraint("product", "version"),
)

activities = Table(
    "drg_lc_activities", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("product", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("stage", String(NAME), nullable=False),
    Column("status", String(20), nullable=False),
    Column("results", Json, nullable=True),
    Column("errors", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, default=now),
    _moment("started_at"),
    _moment("finished_at"),
    Index("ix_drg_lc_activities_product", "product", "version"),
)

tasks = Table(
    "drg_lc_tasks", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("activity_id", Id, ForeignKey("drg_lc_activities.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("executor", String(NAME), nullable=False),
    Column("template", Json, nullable=True),
    Column("configurations", Json, nullable=True),  # as planned; with ${variables} resolved once started
    Column("status", String(20), nullable=False),
    Column("results", Json, nullable=True),
    Column("errors", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, default=now),
    _moment("started_at"),
    _moment("finished_at"),
    # At most once: a runner claims a task before handing it to its executor (a conditional UPDATE, so two
    # processes cannot both claim it); `delivered_at` records that the executor accepted it.
    _moment("claimed_at"),
    _moment("delivered_at"),
    Index("ix_drg_lc_tasks_activity_id", "activity_id"),
)

variables = Table(
    "drg_lc_variables", metadata,
    Column("activity_id", Id, ForeignKey("drg_lc_activities.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("value", Text, nullable=False),
    Column("task_id", Id, nullable=False),
    PrimaryKeyConstraint("activity_id", "name"),
)

stages = Table(  # the lifecycle: one entry per activity that ended PROCESSED
    "drg_lc_stages", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("product", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("stage", String(NAME), nullable=False),
    Column("activity_id", Id, nullable=False),
    Column("results", Json, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    _moment("finished_at"),  # null: the current stage; set when a later stage is reached
    Index("ix_drg_lc_stages_product", "product", "version"),
)


def create_tables(engine: Engine) -> None:
    """Bring the platform's tables, these included, to the newest migration (processes take turns)."""
    upgrade(engine)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with an offset on both databases (SQLite hands back naive datetimes; they were UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
