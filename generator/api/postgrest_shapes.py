"""PostgREST's shapes for the `/rest` surface: its error body, its response headers, one request's context.

Kept apart from the routing (`postgrest.py`) and the writes (`postgrest_writes.py`) so both render alike.
Errors are PostgREST's `{code, message, details, hint}` with its codes (`PGRST...` for request problems,
SQLSTATEs for database refusals; SQLite's refusals get the SQLSTATE PostgreSQL would have given), so a
client that switches on `code` behaves as it does against PostgREST."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from generator.api.endpoints import Preferences, ResourceEndpoints, query_pairs
from generator.api.plans import Row
from generator.api.render import CSV, JSON, PGRST_OBJECT, csv_chunks, negotiate
from generator.codec import dumps
from generator.errors import Problem

JSON_UTF8 = "application/json; charset=utf-8"
OBJECT_UTF8 = "application/vnd.pgrst.object+json; charset=utf-8"
OFFERED = (JSON, PGRST_OBJECT, CSV)
SQLITE_STATES = (("UNIQUE constraint failed", "23505"), ("FOREIGN KEY constraint failed", "23503"),
                 ("NOT NULL constraint failed", "23502"), ("CHECK constraint failed", "23514"))
STATUS_CODES = {400: "PGRST100", 404: "PGRST125", 405: "PGRST117", 406: "PGRST107", 409: "23505",
                415: "PGRST107", 416: "PGRST103", 503: "PGRST000"}


class PgrstError(Exception):
    """An error as PostgREST renders it; raised anywhere below `serve_rest`, rendered once there."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None, hint: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint, self.headers = details, hint, dict(headers or {})

    def response(self) -> Response:
        body = {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}
        return Response(dumps(body), status_code=self.status, media_type=JSON_UTF8, headers=self.headers)


def details_of(problem: Problem) -> str | None:
    """A problem's `errors` (pointer and message each) as PostgREST's one-line `details`."""
    errors = (problem.ext or {}).get("errors") or []
    return "; ".join(f"{e['pointer'] or '/'}: {e['message']}" for e in errors) or None


def translate(problem: Problem, code: str | None = None) -> PgrstError:
    """The same refusal in PostgREST's shape: its status is kept, `code` names the kind of error."""
    chosen = code or STATUS_CODES.get(problem.status, "PGRST000" if problem.status >= 500 else "PGRST100")
    return PgrstError(problem.status, chosen, problem.detail, details_of(problem), headers=problem.headers)


def value_code(problem: Problem) -> str:
    """PostgREST's code for a refused body or value: an unknown column, a missing required one, or a bad value."""
    messages = [e["message"] for e in (problem.ext or {}).get("errors") or []]
    if problem.status == 415:
        return "PGRST107"
    if any(m.endswith("is not a field of this resource") for m in messages):
        return "PGRST204"
    if messages and all(m.endswith("is required") for m in messages):
        return "23502"
    if "not valid JSON" in problem.detail or "must not be empty" in problem.detail:
        return "PGRST102"
    return "22P02"  # invalid_text_representation: what PostgreSQL says of a value its column cannot take


@contextlib.contextmanager
def as_pgrst(code: str | Any = None) -> Iterator[None]:
    """Problems raised inside become PostgREST errors with `code` (a string, or a function of the problem)."""
    try:
        yield
    except Problem as problem:
        chosen = code(problem) if callable(code) else code
        raise translate(problem, chosen) from None


def sqlstate(error: DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE; for SQLite, the one PostgreSQL gives for the same refusal."""
    found = getattr(error.orig, "sqlstate", None)
    if found:
        return str(found)
    message = str(error.orig)
    return next((state for needle, state in SQLITE_STATES if needle in message), None)


def database_error(problem: Problem, error: DBAPIError) -> PgrstError:
    """A database refusal (already a problem naming fields and values) with its SQLSTATE as `code`."""
    state = sqlstate(error)
    hint = None
    if state == "23503":
        hint = "Rows that others reference cannot be deleted; a referenced row must exist"
    return PgrstError(problem.status, state or translate(problem).code, problem.detail, details_of(problem), hint,
                      problem.headers)


def not_single(count: int) -> PgrstError:
    """`Accept: application/vnd.pgrst.object+json` and not exactly one row (PostgREST's PGRST116)."""
    return PgrstError(406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                      f"The result contains {count} rows")


@dataclass(frozen=True)
class Call:
    """One request against one table of the surface: what the handlers need, read once."""

    endpoints: ResourceEndpoints
    request: Request
    prefix: str
    allowed: frozenset[str]  # operation kinds the whitelist enables for this table

    @property
    def prefer(self) -> Preferences:
        return Preferences.of(self.request)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return query_pairs(self.request)

    @property
    def row_filter(self) -> ColumnElement[bool] | None:
        """The caller's row filter (the authorization hook's slot), as the native endpoints take it."""
        return self.request.scope.get("drg.row_filter")

    @property
    def strip_nulls(self) -> bool:
        return "nulls=stripped" in (self.request.headers.get("accept") or "").replace(" ", "")

    def media(self) -> str:
        with as_pgrst("PGRST107"):
            return negotiate(self.request.headers.get("accept"), OFFERED)


def render_rows(rows: Sequence[Row], media: str, status: int, headers: dict[str, str], strip_nulls: bool,
                names: Sequence[str]) -> Response:
    """Rows as a bare JSON array, one object (the caller checked there is exactly one), or CSV."""
    if media == CSV:
        columns = list(rows[0]) if rows else list(names)
        return StreamingResponse(csv_chunks(columns, rows), status_code=status, headers=headers,
                                 media_type="text/csv; charset=utf-8")
    shown = [_stripped(row) for row in rows] if strip_nulls else list(rows)
    if media == PGRST_OBJECT:
        return Response(dumps(shown[0]), status_code=status, media_type=OBJECT_UTF8, headers=headers)
    return Response(dumps(shown), status_code=status, media_type=JSON_UTF8, headers=headers)


def _stripped(row: Row) -> Row:
    return {name: value for name, value in row.items() if value is not None}

