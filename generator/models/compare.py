"""Desired tables vs the live database, as set arithmetic over names, types, nullability and keys.

Types are compared as the SQL each side compiles to on the live dialect, which is what the database
actually holds. The result is a list of sentences naming the table and column, ready for a 409 body or a
boot error. This is what boot, replicas adopting a generation and `touch_database: false` check: the
columns a generation serves must be there, as declared. Changing tables is `evolution`'s work (alembic's
structured diff, which also covers indexes and constraints)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Dialect, Table, inspect
from sqlalchemy.types import TypeEngine

from generator.errors import GeneratorError


class SchemaConflict(GeneratorError):
    """The database holds tables that differ from what the payload declares."""

    def __init__(self, differences: list[str]) -> None:
        super().__init__("; ".join(differences))
        self.differences = differences


def existing_tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def differences(connection: Connection, tables: Iterable[Table]) -> list[str]:
    """Every way the database differs from `tables` (missing tables included)."""
    tables = list(tables)
    present = existing_tables(connection)
    found = [f"table {t.name!r} does not exist in the database" for t in tables if t.name not in present]
    compared = [t for t in tables if t.name in present]
    if not compared:
        return found
    inspector = inspect(connection)
    names = [t.name for t in compared]
    columns = {key[1]: value for key, value in inspector.get_multi_columns(filter_names=names).items()}
    keys = {key[1]: value for key, value in inspector.get_multi_pk_constraint(filter_names=names).items()}
    for table in compared:
        found += _table_differences(connection, table, columns.get(table.name, []), keys.get(table.name, {}))
    return found


# (desired, live) pairs that serve the same field: SQLite number columns created before exact numbers
# were stored as text still read and compare correctly (with a double's precision).
COMPATIBLE = frozenset({("TEXT", "FLOAT"), ("TEXT", "REAL")})


def _table_differences(connection: Connection, table: Table, reflected: list[dict[str, Any]],
                       primary_key: dict[str, Any]) -> list[str]:
    actual = {c["name"]: c for c in reflected}
    desired = {c.name: c for c in table.columns}
    found = [f"table {table.name!r}: column {n!r} is missing from the database" for n in desired if n not in actual]
    found += [f"table {table.name!r}: the database has column {n!r}, which the payload does not declare"
              for n in actual if n not in desired]  # fmt: skip
    for name in desired.keys() & actual.keys():
        dialect = connection.dialect
        want, have = compiled(dialect, desired[name].type), compiled(dialect, actual[name]["type"])
        if want != have and (want, have) not in COMPATIBLE:
            found.append(f"table {table.name!r}: column {name!r} is {have} in the database, the payload needs {want}")
        if desired[name].nullable != actual[name]["nullable"] and not desired[name].primary_key:
            state = "nullable" if actual[name]["nullable"] else "NOT NULL"
            found.append(f"table {table.name!r}: column {name!r} is {state} in the database, "
                         f"the payload says {'nullable' if desired[name].nullable else 'required'}")
    want_key = [c.name for c in table.primary_key.columns]
    have_key = list(primary_key.get("constrained_columns") or [])
    if sorted(want_key) != sorted(have_key):
        found.append(f"table {table.name!r}: primary key is {have_key} in the database, the payload needs {want_key}")
    return sorted(found)


def compiled(dialect: Dialect, type_: TypeEngine[Any]) -> str:
    """The SQL a type compiles to on `dialect`, upper case: what the database holds for it."""
    return type_.dialect_impl(dialect).compile(dialect=dialect).upper()


def shown(dialect: Dialect, type_: TypeEngine[Any]) -> str:
    """The type as DDL writes it on `dialect` (TEXT, not the VARCHAR that `compiled` folds it into)."""
    return type_.compile(dialect=dialect).upper()
