"""Handlers for one resource, built once per generation: statements, converters and names are resolved
here so a request only binds values, runs SQL and serialises.

Handlers are coroutines: they read the raw body themselves (exact numbers) and run the blocking database
work in Starlette's thread pool. Reads on SQLite are the exception: a local primary-key read takes tens of
microseconds, less than the hand-off to a worker thread, so they run inline (writes may wait on SQLite's
busy timeout, so they never do). Responses are pre-serialised bytes (orjson), which Connexion passes
through untouched.

Paging links reproduce the request they page: a list's or a `GET /<t>/query`'s `href` carries the filter in
its query string; a `POST /<t>/query`'s filter is a body, so each of its links is
`{"rel", "href", "method": "POST", "body": <the filter as sent>}` and following one means POSTing that body
to that `href`.

Integer keys a client chooses on PostgreSQL: the table's sequence must end up past them, or a later insert
without a key would be handed the same id. It may only move forward (moving it back to `max(id)` hands out
ids that inserts still in flight already hold). So a write with a chosen key above the sequence takes
`SHARE ROW EXCLUSIVE` on the table first, before any other statement of the transaction: that waits for the
inserts in flight and holds back new ones (and with them their `nextval`), and after the write `setval` moves
the sequence to the key. A chosen key below the sequence changes nothing and locks nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from connexion import request
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    TextClause,
    and_,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from generator.api.db_errors import problem_for
from generator.api.values import RowReader, from_text
from generator.codec import NulCharacter, OutOfRange, dumps, loads_exact
from generator.errors import Issue, Problem, bad_request, not_found
from generator.models.engine import for_writes
from generator.payload.specs import OperationSpec, ResourceSpec
from generator.pointers import child

CREATED_MESSAGE = "Successfully added new resource."
PAGE_NAMES = frozenset({"offset", "limit"})
UNADDRESSABLE = frozenset({"", ".", "..", "query"})


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


async def request_json() -> Any:
    """The request body, parsed so numbers keep every digit (Connexion has validated its shape)."""
    raw = await request.body()
    try:
        return loads_exact(raw)
    except NulCharacter as exc:
        raise bad_request(f"A string cannot be stored: {exc}", [Issue(p, exc.reason) for p in exc.pointers]) from None
    except OutOfRange as exc:
        raise bad_request("A number is beyond the range this service stores (±1.8e308)",
                          [Issue(p, "number beyond ±1.7976931348623157e308") for p in exc.pointers]) from None
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None


class ResourceHandlers:
    """The operations of one table. `function(op)` returns the coroutine Connexion routes to."""

    def __init__(self, resource: ResourceSpec, table: Table, engine: Engine) -> None:
        self.resource, self.table, self.engine = resource, table, engine
        self.writer = for_writes(engine)
        self.path = f"/{resource.name}"
        self.names = [c.name for c in table.columns]
        self.keys = [table.c[name] for name in resource.primary_key]
        self.read_row = RowReader(resource)
        self.filterable = {f.name for f in resource.fields}
        self.key_params = [f"_k{i}" for i in range(len(self.keys))]
        by_key = and_(*(c == bindparam(p) for c, p in zip(self.keys, self.key_params, strict=True)))
        self.select_one = select(table).where(by_key)
        self.select_page = (
            select(table).order_by(*self.keys).limit(bindparam("_limit")).offset(bindparam("_offset"))
        )
        self.delete_one = delete(table).where(by_key)
        self.insert_one = insert(table).returning(*self.keys)
        self.uuid_key = next((f.name for f in resource.key_fields if f.is_uuid), None)
        self.serial = self.keys[0] if resource.autoincrement and engine.dialect.name == "postgresql" else None
        if self.serial is not None:
            quoted = engine.dialect.identifier_preparer.format_table(table)
            sequence = "CAST(pg_get_serial_sequence(:_table, :_column) AS regclass)"
            self.sequence_names = {"_table": quoted, "_column": self.serial.name}
            self.sequence_last: TextClause = text(f"SELECT pg_sequence_last_value({sequence})")
            self.sequence_raise = text(
                f"SELECT setval({sequence}, GREATEST(:_key, COALESCE(pg_sequence_last_value({sequence}), 1)))")
            self.lock_table = text(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE")
        self.inline_reads = engine.dialect.name == "sqlite"

    async def _reading(self, work: Callable[..., Response], *args: Any) -> Response:
        """Run a read: inline on SQLite (see the module doc), in the thread pool elsewhere."""
        if self.inline_reads:
            return work(*args)
        return await run_in_threadpool(work, *args)

    def function(self, op: OperationSpec) -> Callable[..., Any]:
        if op.kind == "query":
            return self.query_get if op.method == "get" else self.query_post
        return {
            "list": self.list_rows, "create": self.create, "read": self.read,
            "replace": self.replace, "update": self.update, "delete": self.delete,
        }[op.kind]  # fmt: skip

    # -- helpers ------------------------------------------------------------------------------------

    def row(self, row: Row[Any] | Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names, row, strict=True))

    def key(self, raw: Any) -> dict[str, Any]:
        """Bind parameters for a path key; composite keys arrive as `a,b` in key order."""
        parts = str(raw).split(",") if len(self.keys) > 1 else [str(raw)]
        if len(parts) != len(self.keys):
            names = ",".join(self.resource.primary_key)
            raise bad_request(f"The key must have {len(self.keys)} comma-separated parts ({names})",
                              [Issue("/path/id", f"expected {names}")])
        values = {}
        for param, field, part in zip(self.key_params, self.resource.key_fields, parts, strict=True):
            try:
                values[param] = from_text(field, part)
            except (ValueError, ArithmeticError) as exc:
                raise bad_request(f"Key part {field.name}={part!r} is invalid: {exc}",
                                  [Issue(child("/path/id", field.name), str(exc))]) from None
        return values

    def key_json(self, values: Sequence[Any]) -> Any:
        if len(values) == 1:
            return values[0]
        return dict(zip(self.resource.primary_key, values, strict=True))

    def location(self, values: Sequence[Any]) -> str:
        text = (v.isoformat() if hasattr(v, "isoformat") else str(v).lower() if isinstance(v, bool) else str(v)
                for v in values)
        return f"{self.path}/{','.join(quote(part, safe='') for part in text)}"

    def _by_key(self, key: dict[str, Any]) -> ColumnElement[bool]:
        return and_(*(c == key[p] for c, p in zip(self.keys, self.key_params, strict=True)))

    def _check_body_key(self, values: dict[str, Any], key: dict[str, Any]) -> None:
        for name, param in zip(self.resource.primary_key, self.key_params, strict=True):
            if name in values and values[name] != key[param]:
                raise bad_request(f"The body's {name} differs from the key in the path",
                                  [Issue(child("", name), "must equal the key in the path, or be left out")])

    # -- collection ---------------------------------------------------------------------------------

    def _page(self, where: ColumnElement[bool] | None, offset: int, limit: int, path: str,
              query: str = "", body: Any = None) -> Response:
        """One page and its links; `body`, when given, is a POST query's filter, repeated in every link."""
        statement = self.select_page if where is None else self.select_page.where(where)
        with self.engine.connect() as connection:
            rows = connection.execute(statement, {"_limit": limit + 1, "_offset": offset}).all()

        def link(rel: str, at: int) -> dict[str, Any]:
            href = {"rel": rel, "href": f"{path}?{query}offset={at}&limit={limit}"}
            return href if body is None else {**href, "method": "POST", "body": body}

        links = [link("self", offset), link("first", 0)]
        if offset > 0:
            links.append(link("prev", max(offset - limit, 0)))
        if len(rows) > limit:
            links.append(link("next", offset + limit))
        return json_response({self.resource.name: [self.row(r) for r in rows[:limit]], "links": links})

    async def list_rows(self, offset: int = 0, limit: int = 100) -> Response:
        return await self._reading(self._page, None, offset, limit, self.path)

    def _filters(self, values: dict[str, Any]) -> ColumnElement[bool] | None:
        if not values:
            return None
        return and_(*(self.table.c[n].is_(None) if v is None else self.table.c[n] == v for n, v in values.items()))

    async def query_post(self, offset: int = 0, limit: int = 100) -> Response:
        body = await request_json()
        where = self._filters(self.read_row(body))
        return await self._reading(self._page, where, offset, limit, f"{self.path}/query", "", body)

    async def query_get(self, offset: int = 0, limit: int = 100, **_: Any) -> Response:
        """Filters come from the request itself: field names need not be Python identifiers."""
        wanted = {k: v for k, v in request.query_params.items() if k in self.filterable and k not in PAGE_NAMES}
        where = self._filters(self.read_row.from_query(wanted))
        query = urlencode(list(wanted.items()))
        return await self._reading(self._page, where, offset, limit, f"{self.path}/query",
                                       f"{query}&" if query else "")

    def _failed(self, error: DBAPIError, values: dict[str, Any] | None = None,
                key: dict[str, Any] | None = None) -> Exception:
        """The problem for a failed write; `values` written and the `key` of the row changed or deleted let
        a foreign-key failure say which row is missing or which rows still reference this one."""
        row = None if key is None else self._by_key(key)
        return problem_for(self.table, error, self.engine, values, row)

    def _claim_key(self, connection: Connection, values: dict[str, Any]) -> int | None:
        """The client-chosen serial key the sequence must be moved past after the write, with the table
        locked for it; None when there is none, or when the sequence is past it already (see the module doc).

        Must run first in its transaction: taking the lock after an insert would be a lock upgrade, which
        deadlocks against the very inserts it waits for."""
        if self.serial is None or (chosen := values.get(self.serial.name)) is None:
            return None
        last = connection.execute(self.sequence_last, self.sequence_names).scalar()
        if chosen <= (last or 0):
            return None
        connection.execute(self.lock_table)
        return int(chosen)

    def _advance_sequence(self, connection: Connection, chosen: int | None) -> None:
        """Move the sequence forward to a claimed key (never back: GREATEST with where it stands)."""
        if chosen is not None:
            connection.execute(self.sequence_raise, {**self.sequence_names, "_key": chosen})

    def _insert(self, values: dict[str, Any]) -> Sequence[Any]:
        try:
            with self.writer.begin() as connection:
                chosen = self._claim_key(connection, values)
                key = connection.execute(self.insert_one, values).one()
                self._advance_sequence(connection, chosen)
                return key
        except DBAPIError as exc:
            raise self._failed(exc, values) from None

    def _check_addressable(self, values: dict[str, Any], base: str = "") -> None:
        """Refuse a key no URL could reach: routing decodes `%2F` before matching, composite keys split on
        commas, and clients drop `.` and `..` segments; `query` is the query route. PUT refuses them as POST
        does: a row created at `/t/%2e` could never be read back."""
        composite = len(self.keys) > 1
        issues = [
            Issue(child(base, name), f"{name}: a key cannot contain '/'{' or ,' if composite else ''}, or be '.', "
                              "'..' or 'query'")
            for name in self.resource.primary_key
            if isinstance(text := values.get(name), str)
            and ("/" in text or (composite and "," in text) or text in UNADDRESSABLE)
        ]
        if issues:
            raise bad_request("This key could not be used in a URL", issues)

    async def create(self) -> Response:
        values = self.read_row(await request_json())
        self._check_addressable(values)
        self.read_row.check_indexed(values)
        if self.uuid_key and values.get(self.uuid_key) is None:
            values[self.uuid_key] = str(uuid.uuid4())
        key = await run_in_threadpool(self._insert, values)
        body = {"message": CREATED_MESSAGE, "id": self.key_json(key)}
        return json_response(body, 201, {"Location": self.location(key)})

    # -- item ---------------------------------------------------------------------------------------

    def _read(self, key: dict[str, Any]) -> Response:
        with self.engine.connect() as connection:
            row = connection.execute(self.select_one, key).first()
        if row is None:
            raise not_found(f"No {self.resource.name} row has this key")
        return json_response(self.row(row))

    async def read(self, id: Any) -> Response:  # noqa: A002 - the path parameter's name
        return await self._reading(self._read, self.key(id))

    def _replace(self, key: dict[str, Any], values: dict[str, Any], *, again: bool = True) -> Response:
        """Update the row at `key`, or create it there. If another request creates it between our UPDATE
        (which found nothing) and our INSERT, the insert's key conflict is no conflict for a PUT: it runs
        once more, and replaces the row."""
        columns = {f.name: values.get(f.name) for f in self.resource.fields if f.name not in self.resource.primary_key}
        keys = dict(zip(self.resource.primary_key, key.values(), strict=True))
        inserting = False
        try:
            with self.writer.begin() as connection:
                chosen = self._claim_key(connection, keys)
                row = None
                if columns:
                    statement = update(self.table).where(self._by_key(key)).values(columns).returning(*self.table.c)
                    row = connection.execute(statement).first()
                else:
                    row = connection.execute(self.select_one, key).first()
                if row is not None:
                    return json_response(self.row(row))
                inserting = True
                row = connection.execute(insert(self.table).returning(*self.table.c), {**columns, **keys}).one()
                self._advance_sequence(connection, chosen)
        except DBAPIError as exc:
            problem = self._failed(exc, {**columns, **keys}, key)
            if again and inserting and isinstance(problem, Problem) and problem.status == 409 \
                    and (problem.ext or {}).get("fields") == list(self.resource.primary_key):
                return self._replace(key, values, again=False)
            raise problem from None
        created = [row._mapping[k] for k in self.resource.primary_key]
        return json_response(self.row(row), 201, {"Location": self.location(created)})

    async def replace(self, id: Any) -> Response:  # noqa: A002
        key = self.key(id)
        values = self.read_row(await request_json())
        self._check_body_key(values, key)
        named = {**values, **dict(zip(self.resource.primary_key, key.values(), strict=True))}
        self._check_addressable(named, "/path/id")
        self.read_row.check_indexed(named, key_pointer="/path/id")
        return await run_in_threadpool(self._replace, key, values)

    def _update(self, key: dict[str, Any], values: dict[str, Any]) -> Response:
        if not values:
            return self._read(key)
        statement = update(self.table).where(self._by_key(key)).values(values).returning(*self.table.c)
        try:
            with self.writer.begin() as connection:
                row = connection.execute(statement).first()
        except DBAPIError as exc:
            raise self._failed(exc, values, key) from None
        if row is None:
            raise not_found(f"No {self.resource.name} row has this key")
        return json_response(self.row(row))

    async def update(self, id: Any) -> Response:  # noqa: A002
        key = self.key(id)
        values = self.read_row(await request_json())
        self._check_body_key(values, key)
        changes = {k: v for k, v in values.items() if k not in self.resource.primary_key}
        self.read_row.check_indexed(changes)
        return await run_in_threadpool(self._update, key, changes)

    def _delete(self, key: dict[str, Any]) -> Response:
        try:
            with self.writer.begin() as connection:
                deleted = connection.execute(self.delete_one, key).rowcount
        except DBAPIError as exc:
            raise self._failed(exc, key=key) from None
        if not deleted:
            raise not_found(f"No {self.resource.name} row has this key")
        return Response(status_code=204)

    async def delete(self, id: Any) -> Response:  # noqa: A002
        return await run_in_threadpool(self._delete, self.key(id))
