"""Writes of the PostgREST surface: inserts (bulk, `columns=`, `on_conflict=` upserts), filtered PATCH and DELETE.

Each write is one transaction through the generation's executor; values go through the resource's body
validators and row reader, filters through its query grammar, so they are refused exactly as on the native
routes. A write whose result breaks `Accept: application/vnd.pgrst.object+json` raises inside its
transaction, so nothing is committed (as PostgREST rolls it back)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import ColumnElement, Connection, Table, UniqueConstraint, and_
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from generator.api.bodies import OFF_LOOP_BYTES, describe, parse
from generator.api.db_errors import problem_for
from generator.api.endpoints import ResourceEndpoints
from generator.api.plans import Row
from generator.api.postgrest_shapes import (
    Call,
    PgrstError,
    as_pgrst,
    database_error,
    not_single,
    render_rows,
    sqlstate,
    value_code,
)
from generator.api.query import ReadQuery
from generator.api.render import PGRST_OBJECT
from generator.errors import Problem, bad_request

RESOLUTIONS = frozenset({"merge-duplicates", "ignore-duplicates"})
RETURNS = frozenset({"minimal", "representation", "headers-only"})
NOT_ON_WRITES = frozenset({"limit", "offset", "order", "cursor", "on_conflict", "columns"})
CLIENT_STATES = frozenset({"21", "22", "23", "42"})  # SQLSTATE classes a client's request causes
KEYS_PER_READ = 500


# -- inserts ------------------------------------------------------------------------------------------------


async def insert_rows(call: Call) -> Response:
    """POST: one row or an array of rows; `Prefer: resolution=...` with `on_conflict=` makes it an upsert."""
    endpoints, prefer = call.endpoints, call.prefer
    media = call.media()
    options = _insert_options(call)
    with as_pgrst("PGRST100"):
        query = endpoints.grammar.parse([("select", options["select"])]) if "select" in options else ReadQuery()
    columns = _column_list(endpoints, options.get("columns"))
    resolution = prefer.resolution if prefer.resolution in RESOLUTIONS else None
    target = _conflict_target(endpoints, options.get("on_conflict")) if resolution else None
    if resolution == "merge-duplicates" and not {"update", "replace"} & call.allowed:
        raise PgrstError(405, "PGRST117", "Unsupported HTTP method: POST with resolution=merge-duplicates",
                         "Merging changes existing rows: the whitelist must enable PATCH or PUT on the row route",
                         "Use resolution=ignore-duplicates, or a plain insert")
    body = await _body(call, endpoints.validators["create"], columns)
    items = body if isinstance(body, list) else [body]
    with as_pgrst(value_code):
        rows = [endpoints.values_of(item, f"/{i}" if isinstance(body, list) else "") for i, item in enumerate(items)]
    endpoints.check_write(call.request, rows, new=True)
    single = media == PGRST_OBJECT
    wanted = prefer.returning == "representation"

    def work(connection: Connection) -> tuple[list[tuple[Any, ...]], list[Row]]:
        chosen = endpoints.plan.claim_keys(connection, rows)
        if resolution is None:
            keys = endpoints.plan.insert_many(connection, rows, upsert=False)  # a plain insert changes no row
        else:
            keys = endpoints.plan.conflict_insert_many(connection, rows, target, resolution == "merge-duplicates",
                                                      call.row_filter)
        endpoints.plan.advance_sequence(connection, chosen)
        if single and len(keys) != 1:
            raise not_single(len(keys))
        found = endpoints.plan.rows_by_keys(connection, keys) if wanted else []
        _embed(call, connection, found, query)
        return keys, found

    def failed(error: DBAPIError) -> Exception:
        if len(rows) > 1 and resolution is None:
            return db_failure(endpoints, error, locate=lambda: endpoints.which_row_failed(rows, False, error))
        return db_failure(endpoints, error, rows[0] if len(rows) == 1 else None)

    keys, found = await endpoints.executor.write(work, failed) if rows else ([], [])
    location = _location(call, keys[0]) if len(keys) == 1 else None
    return mutation_response(call, query, media, len(keys), found, inserted=True, location=location)


def _insert_options(call: Call) -> dict[str, str]:
    options = dict(call.pairs)
    other = sorted(set(options) - {"select", "columns", "on_conflict"})
    if other:
        raise PgrstError(400, "PGRST100", f"An insert takes no filters or paging: {', '.join(other)}",
                         hint="POST takes select=, columns= and on_conflict= only")
    return options


def _names(text: str) -> list[str]:
    return [part.strip().strip('"') for part in text.split(",") if part.strip()]


def _column_list(endpoints: ResourceEndpoints, text: str | None) -> frozenset[str] | None:
    """`columns=a,b`: the only keys read from each row (PostgREST's bulk-insert column list)."""
    if text is None:
        return None
    names = _names(text)
    for name in names:
        if name not in endpoints.grammar.fields:
            raise PgrstError(400, "PGRST204", f"Could not find the '{name}' column of '{endpoints.resource.name}' "
                                              "in the schema cache")
    return frozenset(names)


def _conflict_target(endpoints: ResourceEndpoints, text: str | None) -> tuple[str, ...]:
    """`on_conflict=`: the primary key (the default) or a set of fields declared unique together."""
    if text is None:
        return tuple(endpoints.plan.key_names)
    names = tuple(_names(text))
    if frozenset(names) not in unique_sets(endpoints.plan.table):
        keys = ",".join(endpoints.plan.key_names)
        raise PgrstError(400, "42P10", "there is no unique or exclusion constraint matching the ON CONFLICT "
                                       "specification", f"on_conflict={text}",
                         f"Name the primary key (on_conflict={keys}) or a unique field")
    return names


def unique_sets(table: Table) -> set[frozenset[str]]:
    found = {frozenset(c.name for c in table.primary_key.columns)}
    found |= {frozenset(c.name for c in u.columns) for u in table.constraints if isinstance(u, UniqueConstraint)}
    found |= {frozenset(c.name for c in i.columns) for i in table.indexes if i.unique}  # type: ignore[attr-defined]
    found |= {frozenset({c.name}) for c in table.columns if c.unique}
    return found


def _location(call: Call, key: Sequence[Any]) -> str:
    names = call.endpoints.plan.key_names
    filters = "&".join(f"{quote(n)}=eq.{quote(_text(v), safe='')}" for n, v in zip(names, key, strict=True))
    return f"{call.prefix}/{call.endpoints.resource.name}?{filters}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- bodies -------------------------------------------------------------------------------------------------


async def _body(call: Call, validator: Any, columns: frozenset[str] | None) -> Any:
    """The JSON body, cut to `columns` when given, validated by the served document's schema. An empty array
    is a valid bulk insert of nothing, as in PostgREST."""
    content_type = call.request.headers.get("content-type", "")
    raw = await call.request.body()
    with as_pgrst(value_code):
        if not raw:
            raise bad_request("The request body must not be empty")
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
            raise Problem(415, "Unsupported Media Type", f"Send the body as application/json, not {content_type!r}")
        if len(raw) > OFF_LOOP_BYTES:
            return await run_in_threadpool(_decoded, raw, validator, columns)
        return _decoded(raw, validator, columns)


def _decoded(raw: bytes, validator: Any, columns: frozenset[str] | None) -> Any:
    body = parse(raw)
    if columns is not None:
        body = [_only(item, columns) for item in body] if isinstance(body, list) else _only(body, columns)
    if body == []:
        return body
    issues = [issue for error in validator.iter_errors(body) for issue in describe(error)]
    if issues:
        raise bad_request("The request body does not match the schema", sorted(issues, key=lambda i: i.pointer))
    return body


def _only(item: Any, columns: frozenset[str]) -> Any:
    return {k: v for k, v in item.items() if k in columns} if isinstance(item, dict) else item


# -- filtered updates and deletes ---------------------------------------------------------------------------


def write_filter(call: Call, verb: str) -> ReadQuery:
    """The filters of a PATCH or DELETE (and its `select=` for the representation); at least one filter."""
    refused = sorted({name for name, _ in call.pairs} & NOT_ON_WRITES)
    if refused:
        raise PgrstError(400, "PGRST100", f"{', '.join(refused)} cannot be used with {verb} on this service",
                         hint="Filter the rows to change with column=operator.value parameters")
    with as_pgrst("PGRST100"):
        query = call.endpoints.grammar.parse(call.pairs)
    if not query.filtered:
        raise PgrstError(400, "21000", f"{verb} requires a WHERE clause",
                         hint="Add a filter such as ?id=eq.1 (every row: a filter every row matches)")
    return query


async def update_rows(call: Call) -> Response:
    """PATCH ?filters: the body's fields set on every matching row (the caller's row filter applies)."""
    endpoints = call.endpoints
    media = call.media()
    query = write_filter(call, "UPDATE")
    body = await _body(call, endpoints.validators["update"], None)
    with as_pgrst(value_code):
        values = endpoints.reader(body)
        endpoints.reader.check_indexed(values)
    endpoints.check_write(call.request, [values])
    keys = [name for name in values if name in endpoints.keys.names]
    if keys:
        raise PgrstError(400, "428C9", f"Primary-key fields cannot be changed: {', '.join(keys)}",
                         hint="Insert a row with the new key, then delete the old one")
    fields = endpoints.plan.columns
    protected = [name for name in values if name in fields and fields[name].spec.protected]
    if protected:  # each row's ciphertext is bound to its own key: one value cannot be set on many rows at once
        raise PgrstError(400, "22023", f"Protected fields cannot be set by a filtered update: {', '.join(protected)}",
                         hint="Update each row by its key (PATCH /<table>/{key} on the generated API)")
    conditions = endpoints.plan.conditions(query, call.row_filter)
    statement = endpoints.plan.update_where(conditions, values)

    def work(connection: Connection) -> list[Row]:
        return _changed(call, connection, statement, query, media)

    rows = await endpoints.executor.write(work, lambda error: db_failure(endpoints, error, values, and_(*conditions)))
    return mutation_response(call, query, media, len(rows), rows, inserted=False)


async def delete_rows(call: Call) -> Response:
    """DELETE ?filters: every matching row (the caller's row filter applies); 409 while others reference one."""
    endpoints = call.endpoints
    media = call.media()
    query = write_filter(call, "DELETE")
    conditions = endpoints.plan.conditions(query, call.row_filter)
    statement = endpoints.plan.delete_where(conditions)

    def work(connection: Connection) -> list[Row]:
        return _changed(call, connection, statement, query, media)

    rows = await endpoints.executor.write(work, lambda error: db_failure(endpoints, error, None, and_(*conditions)))
    return mutation_response(call, query, media, len(rows), rows, inserted=False)


def _changed(call: Call, connection: Connection, statement: Any, query: ReadQuery, media: str) -> list[Row]:
    rows = [call.endpoints.plan.row_of(row) for row in connection.execute(statement).all()]
    if media == PGRST_OBJECT and len(rows) != 1:
        raise not_single(len(rows))  # inside the transaction: nothing is changed
    if call.prefer.returning == "representation":
        _embed(call, connection, rows, query)
    return rows


def _embed(call: Call, connection: Connection, rows: list[Row], query: ReadQuery) -> None:
    if rows and query.embeds:
        call.endpoints.plan.embed(connection, rows, query.embeds, call.request.scope.get("drg.embed_filters"))


# -- responses and errors -----------------------------------------------------------------------------------


def mutation_response(call: Call, query: ReadQuery, media: str, affected: int, rows: list[Row], *, inserted: bool,
                      location: str | None = None) -> Response:
    """PostgREST's answer to a write: 201 (insert) or 200 with the rows, 201 or 204 without."""
    prefer = call.prefer
    applied = [f"return={prefer.returning}"] if prefer.returning in RETURNS else []
    if inserted and prefer.resolution in RESOLUTIONS:
        applied.append(f"resolution={prefer.resolution}")
    total = str(affected) if prefer.count else "*"
    span = "*" if inserted or not affected else f"0-{affected - 1}"
    headers = {"Content-Range": f"{span}/{total}"}
    if applied:
        headers["Preference-Applied"] = ", ".join(applied)
    if prefer.returning == "representation":
        shown = call.endpoints.project(rows, query)
        names = list(query.select) if query.select else call.endpoints.plan.names
        return render_rows(shown, media, 201 if inserted else 200, headers, call.strip_nulls, names)
    if location is not None and prefer.returning == "headers-only":
        headers["Location"] = location
    return Response(status_code=201 if inserted else 204, headers=headers)


def db_failure(endpoints: ResourceEndpoints, error: DBAPIError, values: Mapping[str, Any] | None = None,
               row: ColumnElement[bool] | None = None, locate: Callable[[], Problem] | None = None) -> Exception:
    """A database refusal as PostgREST renders it: the native problem's words, the SQLSTATE as `code`.
    Errors of a client's request that the native mapping does not know keep PostgreSQL's first message line."""
    try:
        problem = locate() if locate else problem_for(endpoints.plan.table, error, endpoints.executor.engine,
                                                      values, row)
    except DBAPIError:
        state = sqlstate(error)
        if state and state[:2] in CLIENT_STATES:
            lines = str(error.orig).strip().splitlines()
            return PgrstError(400, state, lines[0] if lines else "The database refused the request")
        return error
    return database_error(problem, error)
