"""Database errors caused by a client's values → problems that name the field, never the SQL.

PostgreSQL says which constraint failed through SQLSTATE and diagnostics; SQLite through its message.
Constraint names follow `models.tables.NAMING`, so both lead back to field names.

A foreign-key failure is one of two cases, and the problem says which: the row written names a parent that
does not exist (`clinic_code 'ZZZ99' does not exist in clinic`), or the row deleted or re-keyed is still
referenced (`3 rows of visit reference this clinic`). SQLite does not say which constraint failed, so on that
error path (only there) the database is asked: each foreign key of the values written is looked up, and the
tables whose foreign keys reference this one are counted.

Two failures are not the client's values but the moment: SQLite's write lock held past the busy timeout (a
long generation, say) is a 503 with `Retry-After`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time
from typing import Any

from sqlalchemy import ColumnElement, Engine, ForeignKeyConstraint, Table, and_, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from generator.errors import Issue, Problem, bad_request, conflict
from generator.pointers import child

SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")
POSTGRES_KEY = re.compile(r"^Key \((.+?)\)=")
POSTGRES_INDEX = re.compile(r'for index "(.+?)"')
RETRY_AFTER_S = 1  # SQLite's busy timeout already waited 5 s; most generations finish within another second


def _constraint_fields(table: Table, error: DBAPIError) -> list[str]:
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if not name:  # program_limit_exceeded names its index only in the message
        found = POSTGRES_INDEX.search(str(error.orig))
        name = found.group(1) if found else None
    if name:
        for constraint in table.constraints:
            if constraint.name == name:
                return [c.name for c in constraint.columns]  # type: ignore[attr-defined]
    column = getattr(diag, "column_name", None)
    if column:
        return [column]
    detail = POSTGRES_KEY.search(getattr(diag, "message_detail", None) or "")
    if detail:  # long constraint names are truncated by the database, so the name did not match above
        return [part.strip().strip('"') for part in detail.group(1).split(",")]
    match = SQLITE_COLUMNS.search(str(error.orig))
    if match:
        return [part.strip().split(".", 1)[-1] for part in match.group(1).split(",")]
    return []


def problem_for(table: Table, error: DBAPIError, engine: Engine | None = None,
                values: Mapping[str, Any] | None = None, row: ColumnElement[bool] | None = None) -> Problem:
    """A 4xx (or a 503 for a busy database) for errors a client's data caused; re-raise anything else.

    `values` are the column values written and `row` selects the row updated or deleted; with `engine` they
    let a foreign-key failure name its case, field, value and table (queried on the error path only)."""
    fields = _constraint_fields(table, error)
    named = ", ".join(fields) or "a field"
    code = getattr(error.orig, "sqlstate", None) or ""
    message = str(error.orig)
    if code == "23505" or "UNIQUE constraint failed" in message:
        keys = {c.name for c in table.primary_key.columns}
        what = "primary key" if fields and set(fields) <= keys else named
        return conflict(f"A {table.name} row with this {what} already exists", fields=fields)
    if code == "23503" or "FOREIGN KEY constraint failed" in message:
        return _reference_problem(table, error, engine, values, row, fields)
    if code == "23502" or "NOT NULL constraint failed" in message:
        return bad_request(f"{named} is required", [Issue(child("", f), f"{f} is required") for f in fields])
    if code == "2200H" or ("database or disk is full" in message and _keys_exhausted(engine, table)):
        keys = [c.name for c in table.primary_key.columns]
        return conflict(f"{table.name} has handed out every automatic key (up to 2^63 - 1); send "
                        f"{', '.join(keys)} explicitly", fields=keys)
    if code == "54000":  # program_limit_exceeded: an index entry or a row larger than PostgreSQL allows
        return bad_request(f"A value of {table.name} is too large for the database: {named}",
                           [Issue(child("", f), f"{f}: too large for the database ({_first_line(message)})")
                            for f in fields])
    if isinstance(error, OperationalError) and ("database is locked" in message or "busy" in message):
        return Problem(503, "Service Unavailable", "The database is busy with another write (a generation, "
                       f"perhaps); retry in {RETRY_AFTER_S} s", headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(error, IntegrityError) or code.startswith("22"):
        return bad_request(f"The database refused a value for {table.name}: {named}")
    raise error


def _keys_exhausted(engine: Engine | None, table: Table) -> bool:
    """SQLite reports a used-up AUTOINCREMENT as a full database; tell the two apart (error path only)."""
    keys = list(table.primary_key.columns)
    if engine is None or len(keys) != 1:
        return False
    with engine.connect() as connection:
        highest = connection.execute(select(func.max(keys[0]))).scalar()
    return isinstance(highest, int) and highest >= 2**63 - 1


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "limit exceeded"


def _reference_problem(table: Table, error: DBAPIError, engine: Engine | None, values: Mapping[str, Any] | None,
                       row: ColumnElement[bool] | None, fields: list[str]) -> Problem:
    detail = getattr(getattr(error.orig, "diag", None), "message_detail", None) or ""
    if values and "is still referenced" not in detail:
        named = {c.name: c for c in table.constraints if isinstance(c, ForeignKeyConstraint)}.get(
            getattr(getattr(error.orig, "diag", None), "constraint_name", None) or "")
        missing = [named] if named is not None else dangling(engine, table, values) if engine is not None else []
        if missing:
            columns = [c.name for fk in missing for c in fk.columns]
            return conflict("; ".join(_missing_parent(fk, values) for fk in missing), fields=columns)
    if engine is not None and row is not None:
        referencing = referencing_rows(engine, table, row)
        if referencing:
            counts = "; ".join(f"{n} {'row' if n == 1 else 'rows'} of {name} "
                               f"{'references' if n == 1 else 'reference'} this {table.name}"
                               for name, n, _ in referencing)
            columns = sorted({c for _, _, referenced in referencing for c in referenced})
            return conflict(f"{counts}: delete or change those first", fields=columns)
    named_fields = ", ".join(fields) or "a field"
    return conflict(f"{table.name}: {named_fields} must reference an existing row, and a row that others "
                    "reference cannot be deleted or re-keyed", fields=fields)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, date | time):
        return repr(value.isoformat())
    return str(value).lower() if isinstance(value, bool) else str(value)


def _missing_parent(fk: ForeignKeyConstraint, values: Mapping[str, Any]) -> str:
    local = [c.name for c in fk.columns]
    shown = [_show(values.get(name)) for name in local]
    if len(local) == 1:
        return f"{local[0]} {shown[0]} does not exist in {fk.referred_table.name}"
    return f"({', '.join(local)}) ({', '.join(shown)}) does not exist in {fk.referred_table.name}"


def dangling(engine: Engine, table: Table, values: Mapping[str, Any]) -> list[ForeignKeyConstraint]:
    """The foreign keys of `table` whose values in `values` name no existing row (error path only)."""
    found: list[ForeignKeyConstraint] = []
    with engine.connect() as connection:
        for fk in table.foreign_key_constraints:
            if any(values.get(c.name) is None for c in fk.columns):
                continue
            match = and_(*(e.column == values[e.parent.name] for e in fk.elements))
            if connection.execute(select(1).where(match)).first() is None:
                found.append(fk)
    return found


def referencing_rows(engine: Engine, table: Table, row: ColumnElement[bool]) -> list[tuple[str, int, Sequence[str]]]:
    """(child table, rows referencing the row `row` selects, referenced columns) for each foreign key that
    blocks deleting or re-keying it. Cascading keys (many-to-many associations) block nothing."""
    found: list[tuple[str, int, Sequence[str]]] = []
    with engine.connect() as connection:
        for other in table.metadata.tables.values():
            for fk in other.foreign_key_constraints:
                if fk.referred_table is not table or (fk.ondelete or "").upper() == "CASCADE":
                    continue
                referenced = [e.column for e in fk.elements]
                parent = connection.execute(select(*referenced).where(row)).first()
                if parent is None or any(v is None for v in parent):
                    continue
                match = and_(*(e.parent == v for e, v in zip(fk.elements, parent, strict=True)))
                count = connection.execute(select(func.count()).select_from(other).where(match)).scalar_one()
                if count:
                    found.append((other.name, count, [c.name for c in referenced]))
    return found
