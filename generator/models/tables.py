"""Specs → SQLAlchemy `MetaData`, and the platform's own tables.

Constraint names follow one convention so a database error can be traced back to the field that caused
it. Many-to-many pairs get an association table `<left>_<right>` keyed by both sides' primary keys.

A single integer key is never handed out twice: PostgreSQL's sequence only moves forward, and on SQLite the
table is declared AUTOINCREMENT (without it SQLite reuses the highest id once that row is deleted, so a
client holding a deleted row's URL would reach a stranger's row). `sqlite_sequence` also follows keys that
clients choose, since SQLite raises it to the largest rowid ever inserted."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from generator.models.protected import storage_columns
from generator.models.types import sql_type
from generator.payload.specs import Generation, ManyToManySpec, ResourceSpec

NAMING = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}
GENERATIONS_TABLE = "drg_generations"


def build_metadata(generation: Generation) -> MetaData:
    metadata = MetaData(naming_convention=NAMING)
    for resource in generation.resources:
        resource_table(metadata, resource)
    for pair in generation.many_to_many:
        association_table(metadata, pair, generation)
    return metadata


def resource_table(metadata: MetaData, resource: ResourceSpec) -> Table:
    keys = set(resource.primary_key)
    columns = [
        Column(
            f.name,
            sql_type(f),
            nullable=not (f.required or f.name in keys),
            unique=f.unique and f.name not in keys,
            autoincrement=resource.autoincrement and f.name in keys,
            comment=f.description,
        )
        for f in resource.fields
    ] + storage_columns(resource)
    constraints = [
        ForeignKeyConstraint(list(fk.fields), [f"{fk.resource}.{name}" for name in fk.reference_fields])
        for fk in resource.foreign_keys
    ]
    return Table(resource.name, metadata, *columns, PrimaryKeyConstraint(*resource.primary_key), *constraints,
                 comment=resource.description, sqlite_autoincrement=resource.autoincrement)


def association_columns(pair: ManyToManySpec, generation: Generation) -> dict[str, list[tuple[str, str]]]:
    """For each side, (association column, referenced key field) pairs. A self-pair prefixes one side."""
    sides: dict[str, list[tuple[str, str]]] = {}
    for index, name in enumerate((pair.left, pair.right)):
        prefix = f"related_{name}" if index == 1 and pair.left == pair.right else name
        key = generation.resource(name).primary_key
        sides[f"{index}:{name}"] = [(f"{prefix}_{k}", k) for k in key]
    return sides


def association_table(metadata: MetaData, pair: ManyToManySpec, generation: Generation) -> Table:
    columns: list[Column] = []
    constraints: list[ForeignKeyConstraint] = []
    for side, pairs in association_columns(pair, generation).items():
        name = side.split(":", 1)[1]
        resource = generation.resource(name)
        columns += [Column(col, sql_type(resource.field(key)), nullable=False) for col, key in pairs]
        constraints.append(ForeignKeyConstraint([c for c, _ in pairs], [f"{name}.{k}" for _, k in pairs],
                                                ondelete="CASCADE"))
    second_side = [c.name for c in columns[len(generation.resource(pair.left).primary_key):]]
    return Table(pair.table_name, metadata, *columns, PrimaryKeyConstraint(*(c.name for c in columns)),
                 *constraints, Index(None, *second_side))  # links read from the other side


# The platform's own tables. They are made and changed by generator/migrations: a change here needs a revision
# there (tests/test_migrations.py fails, naming the difference, until it has one).
platform_metadata = MetaData(naming_convention=NAMING)
generations = Table(
    GENERATIONS_TABLE,
    platform_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=lambda: datetime.now(UTC)),
    Column("created_by", String(200)),  # the principal's subject; None in development mode or for older rows
)
tableschemas = Table(
    "drg_tableschemas",
    platform_metadata,
    Column("name", String(200), primary_key=True),
    Column("body", Text, nullable=False),
)
