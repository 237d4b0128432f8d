"""Database errors caused by a client's values → problems that name the field, never the SQL.

PostgreSQL says which constraint failed through SQLSTATE and diagnostics; SQLite through its message.
Constraint names follow `models.tables.NAMING`, so both lead back to field names."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, IntegrityError

from generator.errors import Issue, Problem, bad_request, conflict
from generator.pointers import child

SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")
POSTGRES_KEY = re.compile(r"^Key \((.+?)\)=")


def _constraint_fields(table: Table, error: DBAPIError) -> list[str]:
    diag = getattr(error.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
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


def problem_for(table: Table, error: DBAPIError, dangling: Callable[[], list[str]] | None = None) -> Problem:
    """A 400/409 for errors a client's data caused; re-raise anything else as the server's fault.

    `dangling` names the fields whose reference is missing, for databases (SQLite) that do not say."""
    fields = _constraint_fields(table, error)
    named = ", ".join(fields) or "a field"
    code = getattr(error.orig, "sqlstate", None) or ""
    message = str(error.orig)
    if code == "23505" or "UNIQUE constraint failed" in message:
        keys = {c.name for c in table.primary_key.columns}
        what = "primary key" if fields and set(fields) <= keys else named
        return conflict(f"A {table.name} row with this {what} already exists", fields=fields)
    if code == "23503" or "FOREIGN KEY constraint failed" in message:
        fields = fields or (dangling() if dangling else [])
        named = ", ".join(fields) or "a field"
        return conflict(f"{table.name}: {named} must reference an existing row, and a row that others "
                        "reference cannot be deleted or re-keyed", fields=fields)
    if code == "23502" or "NOT NULL constraint failed" in message:
        return bad_request(f"{named} is required", [Issue(child("", f), f"{f} is required") for f in fields])
    if isinstance(error, IntegrityError) or code.startswith("22"):
        return bad_request(f"The database refused a value for {table.name}: {named}")
    raise error
