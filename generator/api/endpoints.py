"""The endpoints of one resource, built once per generation: `endpoint(op)` gives `async (request, params)`.

Each endpoint reads the request (path key, query grammar, body validated against the served document),
runs its plan through the executor, and renders. Reads fill the plan's slots (filters, order, cursor,
page, select, embeds, the caller's row filter); writes run in one transaction each.

Paging links reproduce the request they page. `next` carries a keyset cursor (page 10,000 costs what page
1 does); `self`, `first` and `prev` use offsets. A `POST /<t>/query`'s filter is a body, so each of its
links is `{"rel", "href", "method": "POST", "body": <the query as sent>}`: follow one by POSTing that body to
that `href`. Counts are taken only when asked (`Prefer: count=exact|planned|estimated`).

Optimistic concurrency: reads and writes answer an `ETag`; `PUT`, `PATCH` and `DELETE` with an `If-Match`
that is not current get 412 and change nothing (the row is read and locked in the write's transaction)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import ColumnElement, Connection
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from generator.api.bodies import read_body
from generator.api.db_errors import problem_for
from generator.api.execution import Executor
from generator.api.keys import KeyCodec
from generator.api.plans import ResourcePlan, Row
from generator.api.query import Grammar, ReadQuery
from generator.api.render import (
    CSV,
    JSON,
    content_range,
    csv_chunks,
    etag,
    etag_of,
    json_response,
    matches,
    negotiate,
)
from generator.api.values import RowReader
from generator.codec import dumps
from generator.errors import Issue, Problem, bad_request, not_found
from generator.payload.specs import OperationSpec, ResourceSpec
from generator.pointers import child

Endpoint = Callable[[Request, Sequence[str]], Awaitable[Response]]
CREATED_MESSAGE = "Successfully added new resource."
COUNTS = frozenset({"exact", "planned", "estimated"})
PAGE_PARAMETERS = frozenset({"offset", "limit", "cursor"})
ROW_FILTER_KEY = "drg.row_filter"  # the caller's row filter, set by the guard (guard.py)
EMBED_FILTERS_KEY = "drg.embed_filters"  # related table → its row filter for the caller
CHECK_WRITE_KEY = "drg.check_write"  # values → None, or raises the guard's problem


@dataclass(frozen=True)
class Preferences:
    """RFC 7240 `Prefer`, as PostgREST reads it."""

    count: str | None = None
    returning: str | None = None
    resolution: str | None = None

    @classmethod
    def of(cls, request: Request) -> Preferences:
        found: dict[str, str] = {}
        for header in request.headers.getlist("prefer"):
            for item in header.split(","):
                name, _, value = item.strip().partition("=")
                found[name.strip().lower()] = value.strip().strip('"').lower()
        count = found.get("count")
        return cls(count if count in COUNTS else None, found.get("return"), found.get("resolution"))


def query_pairs(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def no_query(request: Request) -> None:
    """Writes take no query parameters: name any sent, as strict validation did."""
    names = sorted({name for name, _ in query_pairs(request)})
    if names:
        raise bad_request("This operation takes no query parameters",
                          [Issue(child("/query", n), f"unknown query parameter {n!r}") for n in names])


class ResourceEndpoints:
    def __init__(self, resource: ResourceSpec, plan: ResourcePlan, executor: Executor, grammar: Grammar,
                 validators: Mapping[str, Any]) -> None:
        self.resource, self.plan, self.executor, self.grammar = resource, plan, executor, grammar
        self.validators = validators
        self.path = f"/{resource.name}"
        self.keys = KeyCodec(resource, self.path)
        self.reader = RowReader(resource)
        self.uuid_key = next((f.name for f in resource.key_fields if f.is_uuid), None)

    def endpoint(self, op: OperationSpec) -> Endpoint:
        if op.kind == "query":
            return self.query_get if op.method == "get" else self.query_post
        return {
            "list": self.list_rows, "create": self.create, "read": self.read,
            "replace": self.replace, "update": self.update, "delete": self.delete,
        }[op.kind]  # fmt: skip

    def row_filter(self, request: Request) -> ColumnElement[bool] | None:
        """The caller's row filter (the `drg_row_filter` hooks' conditions, put in the scope by the guard):
        None when no policy limits the caller's rows."""
        return request.scope.get(ROW_FILTER_KEY)

    def check_write(self, request: Request, rows: Sequence[Mapping[str, Any]], *, new: bool = False) -> None:
        """Ask the guard (`drg_check_write`) whether the caller may write these values; raises a problem.
        `new` rows are judged whole (a column left out will be NULL); updates only by what they change."""
        check = request.scope.get(CHECK_WRITE_KEY)
        if check is not None:
            blank = dict.fromkeys(self.plan.names) if new else {}
            for row in rows:
                check({**blank, **row})

    def failed(self, values: Mapping[str, Any] | None = None, key: Sequence[Any] | None = None
               ) -> Callable[[DBAPIError], Exception]:
        row = None if key is None else self.plan.by_key_values(key)
        return lambda error: problem_for(self.plan.table, error, self.executor.engine, values, row)

    # -- reads --------------------------------------------------------------------------------------------

    async def list_rows(self, request: Request, params: Sequence[str]) -> Response:
        pairs = query_pairs(request)
        return await self._page(request, self.grammar.parse(pairs), self.path, pairs)

    async def query_get(self, request: Request, params: Sequence[str]) -> Response:
        pairs = query_pairs(request)
        return await self._page(request, self.grammar.parse(pairs), f"{self.path}/query", pairs)

    async def query_post(self, request: Request, params: Sequence[str]) -> Response:
        body = await read_body(request, self.validators["query"])
        pairs = query_pairs(request)
        from_body = self.grammar.parse_body(body)
        paging = self.grammar.parse([(n, v) for n, v in pairs if n in PAGE_PARAMETERS])
        unknown = sorted({n for n, _ in pairs if n not in PAGE_PARAMETERS})
        if unknown:
            raise bad_request("A query body takes its filters in the body",
                              [Issue(child("/query", n), f"unknown query parameter {n!r}") for n in unknown])
        query = ReadQuery(from_body.where, from_body.order, from_body.select, from_body.embeds,
                          paging.limit if "limit" in dict(pairs) else from_body.limit,
                          paging.offset if "offset" in dict(pairs) else from_body.offset,
                          paging.cursor or from_body.cursor)
        return await self._page(request, query, f"{self.path}/query", pairs, body)

    async def _page(self, request: Request, query: ReadQuery, path: str, pairs: list[tuple[str, str]],
                    body: Any = None) -> Response:
        media = negotiate(request.headers.get("accept"), (JSON, CSV))
        prefer = Preferences.of(request)
        row_filter = self.row_filter(request)

        def work(connection: Connection) -> tuple[list[Row], str | None, int | None]:
            rows, cursor = self.plan.rows(connection, query, row_filter)
            if query.embeds:
                self.plan.embed(connection, rows, query.embeds, request.scope.get(EMBED_FILTERS_KEY))
            total = self.plan.count(connection, query, row_filter, prefer.count) if prefer.count else None
            return rows, cursor, total

        rows, cursor, total = await self.executor.read(work)
        rows = self.project(rows, query)
        offset = None if query.cursor else query.offset
        headers = {"Content-Range": content_range(offset, len(rows), total)}
        if prefer.count:
            headers["Preference-Applied"] = f"count={prefer.count}"
        if media == CSV:
            names = list(rows[0]) if rows else (list(query.select) if query.select else self.plan.names)
            return StreamingResponse(csv_chunks(names, rows), media_type="text/csv; charset=utf-8", headers=headers)
        document: dict[str, Any] = {self.resource.name: rows, "links": links(path, pairs, query, cursor, body)}
        if total is not None:
            document["count"] = total
        return json_response(document, headers=headers)

    @staticmethod
    def project(rows: list[Row], query: ReadQuery) -> list[Row]:
        if query.select is None:
            return rows
        kept = [*query.select, *(e.name for e in query.embeds)]
        return [{name: row[name] for name in kept} for row in rows]

    async def read(self, request: Request, params: Sequence[str]) -> Response:
        no_query(request)
        key = self.keys.parse(params[0])
        row_filter = self.row_filter(request)
        row = await self.executor.read(lambda connection: self.plan.read(connection, key, row_filter))
        if row is None:
            raise not_found(f"No {self.resource.name} row has this key")
        body = dumps(row)
        tag = etag_of(body)  # the bytes sent, hashed: one serialisation per read
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        return Response(body, media_type=JSON, headers={"ETag": tag})

    # -- writes -------------------------------------------------------------------------------------------

    def values_of(self, body: Any, pointer: str = "") -> dict[str, Any]:
        values = self.reader(body, pointer=pointer)
        self.keys.check_addressable(values, pointer)
        self.reader.check_indexed(values)
        if self.uuid_key and values.get(self.uuid_key) is None:
            values[self.uuid_key] = str(uuid.uuid4())
        return values

    async def create(self, request: Request, params: Sequence[str]) -> Response:
        no_query(request)
        body = await read_body(request, self.validators["create"])
        upsert = Preferences.of(request).resolution == "merge-duplicates"
        if isinstance(body, list):
            return await self._create_many(request, body, upsert)
        values = self.values_of(body)
        self.check_write(request, [values], new=True)

        row_filter = self.row_filter(request)

        def insert(connection: Connection) -> tuple[Any, ...]:
            chosen = self.plan.claim_keys(connection, [values])
            key = self.plan.insert_many(connection, [values], upsert=upsert, row_filter=row_filter)[0]
            self.plan.advance_sequence(connection, chosen)
            return key

        key = await self.executor.write(insert, self.failed(values))
        created = {"message": CREATED_MESSAGE, "id": self.keys.json(key)}
        return json_response(created, 201, {"Location": self.keys.location(key)})

    async def _create_many(self, request: Request, body: list[Any], upsert: bool) -> Response:
        rows = [self.values_of(item, f"/{index}") for index, item in enumerate(body)]
        self.check_write(request, rows, new=True)
        row_filter = self.row_filter(request)

        def insert(connection: Connection) -> list[Any]:
            chosen = self.plan.claim_keys(connection, rows)
            keys = self.plan.insert_many(connection, rows, upsert=upsert, row_filter=row_filter)
            self.plan.advance_sequence(connection, chosen)
            return keys

        def failed(error: DBAPIError) -> Exception:
            return self.which_row_failed(rows, upsert, error)

        keys = await self.executor.write(insert, failed)
        return json_response({"message": f"Successfully added {len(keys)} resources.",
                              "ids": [self.keys.json(k) for k in keys]}, 201)

    def which_row_failed(self, rows: list[dict[str, Any]], upsert: bool, error: DBAPIError) -> Exception:
        """Find the first row that fails alone (error path only: rows are tried one by one in a transaction
        that is always rolled back), and point the problem at it."""
        with self.executor.writer.connect() as connection:
            transaction = connection.begin()
            try:
                for index, row in enumerate(rows):
                    savepoint = connection.begin_nested()
                    try:
                        self.plan.insert_many(connection, [row], upsert=upsert)
                        savepoint.commit()
                    except DBAPIError as single:
                        found = _at_row(problem_for(self.plan.table, single, self.executor.engine, row), index)
                        with contextlib.suppress(DBAPIError):  # SQLite ends the transaction on some errors
                            savepoint.rollback()
                        return found
            finally:
                with contextlib.suppress(DBAPIError):
                    transaction.rollback()
        return problem_for(self.plan.table, error, self.executor.engine)

    async def replace(self, request: Request, params: Sequence[str]) -> Response:
        no_query(request)
        key = self.keys.parse(params[0])
        body = await read_body(request, self.validators["replace"])
        values = self.reader(body)
        self.keys.check_body(values, key)
        named = {**values, **dict(zip(self.keys.names, key, strict=True))}
        self.keys.check_addressable(named, "/path/id")
        self.reader.check_indexed(named, key_pointer="/path/id")
        columns = {name: values.get(name) for name in self.plan.value_names}
        self.check_write(request, [{**columns, **named}], new=True)
        if_match = request.headers.get("if-match")
        row_filter = self.row_filter(request)
        replace_one = _within(self.plan.replace_one, row_filter)

        def put(connection: Connection) -> tuple[Row, bool]:
            chosen = self.plan.claim_keys(connection, [named])
            self._check_if_match(connection, key, if_match, row_filter)
            row = None
            if columns:
                sealed = self.plan.sealed_changes(key, columns)
                found = connection.execute(replace_one, self.plan.update_binds(key, sealed)).first()
                row = None if found is None else self.plan.row_of(found)
            else:
                row = self.plan.read(connection, key, row_filter)
            if row is not None:
                return row, False
            inserted = connection.execute(self.plan.insert_row, self.plan.sealed_row({**columns, **named})).one()
            self.plan.advance_sequence(connection, chosen)
            return self.plan.row_of(inserted), True

        try:
            row, created = await self.executor.write(put, self.failed({**columns, **named}, key))
        except Problem as problem:
            if problem.status != 409 or (problem.ext or {}).get("fields") != self.keys.names:
                raise
            # created by another request between our UPDATE and INSERT: a PUT replaces it
            row, created = await self.executor.write(put, self.failed({**columns, **named}, key))
        headers = {"ETag": etag(row)}
        if created:
            headers["Location"] = self.keys.location(key)
        return json_response(row, 201 if created else 200, headers)

    async def update(self, request: Request, params: Sequence[str]) -> Response:
        no_query(request)
        key = self.keys.parse(params[0])
        body = await read_body(request, self.validators["update"])
        values = self.reader(body)
        self.keys.check_body(values, key)
        changes = {k: v for k, v in values.items() if k not in self.keys.names}
        self.reader.check_indexed(changes)
        self.check_write(request, [changes])
        if_match = request.headers.get("if-match")
        row_filter = self.row_filter(request)
        sealed = self.plan.sealed_changes(key, changes)
        statement = _within(self.plan.update_statement(frozenset(sealed)), row_filter) if changes else None

        def patch(connection: Connection) -> Row | None:
            self._check_if_match(connection, key, if_match, row_filter)
            if statement is None:
                return self.plan.read(connection, key, row_filter)
            found = connection.execute(statement, self.plan.update_binds(key, sealed)).first()
            return None if found is None else self.plan.row_of(found)

        row = await self.executor.write(patch, self.failed(changes, key))
        if row is None:
            raise not_found(f"No {self.resource.name} row has this key")
        return json_response(row, headers={"ETag": etag(row)})

    async def delete(self, request: Request, params: Sequence[str]) -> Response:
        no_query(request)
        key = self.keys.parse(params[0])
        if_match = request.headers.get("if-match")
        row_filter = self.row_filter(request)
        delete_one = _within(self.plan.delete_one, row_filter)

        def remove(connection: Connection) -> int:
            self._check_if_match(connection, key, if_match, row_filter)
            return int(connection.execute(delete_one, self.plan.key_binds(key)).rowcount)

        if not await self.executor.write(remove, self.failed(key=key)):
            raise not_found(f"No {self.resource.name} row has this key")
        return Response(status_code=204)

    def _check_if_match(self, connection: Connection, key: Sequence[Any], if_match: str | None,
                        row_filter: ColumnElement[bool] | None) -> None:
        if if_match is None:
            return
        current = self.plan.read(connection, key, row_filter, for_update=True)
        if not matches(if_match, None if current is None else etag(current)):
            raise Problem(412, "Precondition Failed", "The row changed since it was read (If-Match is not its "
                          "current ETag); read it again, then retry", extra={"etag": None if current is None
                                                                              else etag(current)})


def _within(statement: Any, row_filter: ColumnElement[bool] | None) -> Any:
    """A prebuilt UPDATE or DELETE limited to the rows the caller may reach (a row outside is not found)."""
    return statement if row_filter is None else statement.where(row_filter)


def _at_row(problem: Problem, index: int) -> Problem:
    """The same problem, pointing into row `index` of an array body."""
    ext = dict(problem.ext or {})
    errors = ext.pop("errors", None) or [{"pointer": "", "message": problem.detail}]
    issues = [Issue(f"/{index}{e['pointer']}", e["message"]) for e in errors]
    return Problem(problem.status, problem.title, f"Row {index}: {problem.detail}; nothing was written",
                   errors=issues, extra=ext, headers=problem.headers)


def links(path: str, pairs: list[tuple[str, str]], query: ReadQuery, cursor: str | None,
           body: Any) -> list[dict[str, Any]]:
    kept = [(n, v) for n, v in pairs if n not in PAGE_PARAMETERS]

    def link(rel: str, page: list[tuple[str, str]]) -> dict[str, Any]:
        href = f"{path}?{urlencode(kept + page)}"
        item: dict[str, Any] = {"rel": rel, "href": href}
        return item if body is None else {**item, "method": "POST", "body": body}

    limit = str(query.limit)
    if query.cursor:
        found = [link("self", [("limit", limit), ("cursor", query.cursor)])]
    else:
        found = [link("self", [("offset", str(query.offset)), ("limit", limit)])]
    found.append(link("first", [("offset", "0"), ("limit", limit)]))
    if not query.cursor and query.offset > 0:
        found.append(link("prev", [("offset", str(max(query.offset - query.limit, 0))), ("limit", limit)]))
    if cursor is not None:
        found.append(link("next", [("limit", limit), ("cursor", cursor)]))
    return found
