"""Many new rows into a PostgreSQL table with `COPY ... FROM STDIN`, in the caller's transaction.

A multi-row INSERT of 1,000 rows × 10 columns is a 10,000-placeholder statement that psycopg parses again
for every batch (too long for its statement cache), which held a 100,000-row POST to about 3,000 rows/s.
COPY sends rows, not SQL. It cannot return keys, so the keys are known before: a serial key is drawn
from the table's sequence for the rows that do not choose one (one `generate_series` query), and every
other key is in the rows already. Values go through the columns' own bind processors (JSON, exact
numbers, datetimes as stored text), so a row is stored exactly as an INSERT would store it.

Errors are raised as SQLAlchemy's `DBAPIError` (the same class an INSERT would raise), so the executor
maps them to 409/400 and the endpoint finds the failing row the usual way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Column, Connection, LargeBinary, Table, text
from sqlalchemy.exc import DBAPIError

COPY_FROM_ROWS = 100  # fewer rows: one multi-row INSERT is as fast and keeps the plain path


def draw_serial_keys(connection: Connection, table: Table, serial: Column[Any], count: int) -> list[int]:
    """`count` values of the serial key's sequence, in order (what the rows' DEFAULT would have taken)."""
    quoted = table.name.replace('"', '""')
    statement = text("SELECT nextval(CAST(pg_get_serial_sequence(:_table, :_column) AS regclass)) "
                     "FROM generate_series(1, :_count)")
    found = connection.execute(statement, {"_table": f'"{quoted}"', "_column": serial.name, "_count": count})
    return [row[0] for row in found]


def copy_rows(connection: Connection, table: Table, rows: Iterable[Mapping[str, Any]], names: Sequence[str]) -> None:
    """COPY `rows` (each with exactly the columns `names`) into `table`. `rows` may be produced as they are
    consumed (a protected table's rows are sealed a chunk at a time): psycopg sends each buffer as it fills,
    so the server stores rows while later ones are still being made."""
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    # bytes (protected values, blind indexes) go to psycopg as they are: its bytea dumper takes them without
    # LargeBinary's per-value `Binary` wrapper
    processors = [None if isinstance(table.c[name].type, LargeBinary)
                  else table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    converters = [(name, process) for name, process in zip(names, processors, strict=True)]
    columns = ", ".join(preparer.quote(name) for name in names)
    statement = f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([value if process is None or value is None else process(value)
                                for name, process in converters for value in (row[name],)])
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from None
    finally:
        cursor.close()
