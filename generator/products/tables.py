"""The data products' own tables, on `platform_metadata`. They belong to the platform's migrations
(generator/migrations, run at boot by `ddl.ensure_platform_tables`): a change here needs a revision there.

Bodies that follow the seed's shapes (a source, a pipeline, a serving) are kept whole as JSON text, with the
columns queries need (names, owner, serving type) beside them: the API stores what it was sent and the seed's
objects are still being refined. `drg_catalog_version` is one row whose counter every change moves, so other
processes know when their `Catalog` snapshot is stale."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from generator.models.tables import platform_metadata

NAME = 200  # product, team, serving, source and pipeline names


def _now() -> datetime:
    return datetime.now(UTC)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, default=_now)


products = Table(
    "drg_products",
    platform_metadata,
    Column("name", String(NAME), primary_key=True),
    Column("owner", String(NAME), nullable=False),
    Column("body", Text, nullable=False),  # description, multiTenant, organizations, kmsKeyArn, ...
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=_now),
)


def _part(table_name: str, *columns: Column) -> Table:
    """A named part of a product (source, pipeline, serving), deleted with it."""
    return Table(
        table_name,
        platform_metadata,
        Column("product", String(NAME), nullable=False),
        Column("name", String(NAME), nullable=False),
        *columns,
        Column("body", Text, nullable=False),
        _created(),
        PrimaryKeyConstraint("product", "name"),
        ForeignKeyConstraint(["product"], ["drg_products.name"], ondelete="CASCADE"),
    )


sources = _part("drg_product_sources")
pipelines = _part("drg_product_pipelines")
servings = _part("drg_product_servings", Column("serving_type", String(20), nullable=False))

grants = Table(
    "drg_product_grants",
    platform_metadata,
    Column("product", String(NAME), nullable=False),
    Column("serving", String(NAME), nullable=False),
    Column("grantee", String(NAME), nullable=False),
    Column("granted_by", String(NAME), nullable=False),
    _created(),
    PrimaryKeyConstraint("product", "serving", "grantee"),
    ForeignKeyConstraint(["product", "serving"], ["drg_product_servings.product", "drg_product_servings.name"],
                         ondelete="CASCADE"),
)

team_keys = Table(
    "drg_team_keys",
    platform_metadata,
    Column("key_id", String(32), primary_key=True),
    Column("team", String(NAME), nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the secret; the secret itself is never stored
    Column("active", Boolean, nullable=False),
    _created(),
    Column("deactivated_at", DateTime(timezone=True), nullable=True),
    Index("ix_drg_team_keys_team", "team"),
)

resource_owners = Table(
    "drg_resource_owners",
    platform_metadata,
    Column("resource", String(NAME), primary_key=True),
    Column("product", String(NAME), nullable=True),  # no foreign key: a product may be deleted later
    Column("team", String(NAME), nullable=True),
    Column("generation", String(64), nullable=False),
    _created(),
)

audit_log = Table(
    "drg_audit_log",
    platform_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, default=_now),
    Column("actor", String(NAME), nullable=False),
    Column("action", String(40), nullable=False),
    Column("entity", String(40), nullable=False),
    Column("product", String(NAME), nullable=True),
    Column("team", String(NAME), nullable=True),
    Column("target", String(NAME * 2), nullable=True),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Index("ix_drg_audit_log_product", "product"),
    Index("ix_drg_audit_log_team", "team"),
)

catalog_version = Table(
    "drg_catalog_version",
    platform_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)


def iso(moment: datetime) -> str:
    """ISO 8601 with an offset on both databases (SQLite hands back naive datetimes; they were UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
