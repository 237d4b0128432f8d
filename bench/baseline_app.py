"""The benchmark's BASELINE: the best bare implementation of the routes the service is measured on.

What a good engineer would write by hand for one table, with nothing generic: plain Starlette + SQLAlchemy
Core, no Connexion, no request validation, no OpenAPI. It reflects one table the service generated
(BASELINE_TABLE, default `items`) and serves

    GET  /<table>/{id}                     -> the row as a JSON object (404 if absent)
    GET  /<table>?offset=N&limit=M         -> {"<table>": [rows], "links": [...]}, rows ordered by the key
    GET  /<table>?<field>=eq.<value>       -> the same, filtered on BASELINE_FILTER_FIELD (default `email`,
                                              a unique, i.e. indexed, field); other filters are refused
    POST /<bulk table>  [ {...}, ... ]     -> inserts a JSON array in one transaction, answers the keys
                                              (only when BASELINE_BULK_TABLE names a table)

with the same response bodies as the service (`bench/run.py` checks the rows before it measures, and the
links too: `next` carries the same keyset cursor the service issues, so both do the same work).

What makes it the best bare implementation rather than the plain recipe:

* reads on PostgreSQL run on an AUTOCOMMIT engine (`execution_options(isolation_level="AUTOCOMMIT")`): a
  single SELECT is atomic on its own, and no BEGIN/ROLLBACK round trips are paid. On SQLite reads run
  inline on the event loop (pysqlite sends no BEGIN for a SELECT; a local lookup is cheaper than a thread
  hop); on PostgreSQL in Starlette's thread pool, as the service runs them;
* every statement is built once at start-up (bound parameters only), so a request only binds and runs;
* JSON is written with orjson, row dicts built with `zip` against precomputed column names;
* the engine has the service's pool settings (psycopg 3, pool size 10, max overflow 20).

Writes (the bulk insert) run in one transaction on the ordinary engine, as executemany with RETURNING of
the keys in the order sent (SQLAlchemy's insertmanyvalues batches them into multi-row INSERTs), and no
validation: the service's extra cost there is its validation and conversion.

Configuration (environment): BASELINE_DATABASE_URL (SQLAlchemy URL), BASELINE_TABLE (default `items`),
BASELINE_FILTER_FIELD (default `email`), BASELINE_BULK_TABLE (optional), BASELINE_NUMBER_FIELDS (comma-separated
`number` columns: on SQLite the service stores them as exact decimal text, which is written back as JSON numbers).
Run: `python -m uvicorn --app-dir bench baseline_app:app --workers 2`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from sqlalchemy import Connection, Engine, MetaData, Table, bindparam, create_engine, insert, select
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
T = TypeVar("T")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # a raw JSON number, as the service writes it
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json")


def problem(status: int, detail: str) -> Response:
    return Response(orjson.dumps({"status": status, "detail": detail}), status_code=status,
                    media_type="application/problem+json")


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return create_engine(parsed)  # SQLAlchemy's defaults for a file database, as the service gets
    return create_engine(parsed, pool_size=10, max_overflow=20, pool_recycle=1800,
                         json_serializer=lambda v: orjson.dumps(v).decode(), json_deserializer=orjson.loads)


def cursor_after(key_name: str, last: Any) -> str:
    """The keyset cursor of the page after the row whose key is `last`, in the form the service issues."""
    payload = orjson.dumps({"k": [key_name], "v": [str(last)]})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def build_app(url: str, table_name: str, filter_field: str, bulk_table: str | None,
              number_fields: frozenset[str] = frozenset()) -> Starlette:
    engine = make_engine(url)
    postgres = engine.dialect.name == "postgresql"
    reader = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
    metadata = MetaData()
    table = Table(table_name, metadata, autoload_with=engine)
    key = next(iter(table.primary_key.columns))
    key_name = str(key.name)
    names = [str(c.name) for c in table.columns]  # reflection gives quoted_name, which orjson refuses as a key
    # SQLite keeps the service's `number` columns as exact decimal text; written back as raw JSON numbers
    number_at = [i for i, n in enumerate(names) if n in number_fields] if not postgres else []

    def as_dict(row: Any) -> dict[str, Any]:
        if number_at:
            row = list(row)
            for i in number_at:
                if isinstance(row[i], str):
                    row[i] = orjson.Fragment(row[i])
        return dict(zip(names, row, strict=True))

    select_one = select(table).where(key == bindparam("_k0"))
    select_page = select(table).order_by(key).limit(bindparam("_limit")).offset(bindparam("_offset"))
    select_filtered = (select(table).where(table.c[filter_field] == bindparam("_v")).order_by(key)
                       .limit(bindparam("_limit")).offset(bindparam("_offset")))
    path = f"/{table_name}"

    async def run(work: Callable[[Connection], T]) -> T:
        def once() -> T:
            with reader.connect() as connection:
                return work(connection)

        return await run_in_threadpool(once) if postgres else once()

    async def read(request: Request) -> Response:
        binds = {"_k0": request.path_params["id"]}
        row = await run(lambda connection: connection.execute(select_one, binds).first())
        if row is None:
            return problem(404, f"No {table_name} row has this key")
        return json_response(as_dict(row))

    async def list_rows(request: Request) -> Response:
        query = request.query_params
        try:
            offset = int(query.get("offset", 0))
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return problem(400, "offset and limit must be integers")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            return problem(400, f"offset must be >= 0 and limit within 1..{MAX_LIMIT}")
        unknown = set(query) - {"offset", "limit", filter_field}
        if unknown:
            return problem(400, f"unsupported query parameters: {', '.join(sorted(unknown))}")
        kept: list[tuple[str, str]] = []
        binds: dict[str, Any] = {"_limit": limit + 1, "_offset": offset}
        statement = select_page
        if filter_field in query:
            text = query[filter_field]
            if not text.startswith("eq."):
                return problem(400, f"only {filter_field}=eq.<value> is supported")
            kept = [(filter_field, text)]
            binds["_v"] = text[3:]
            statement = select_filtered
        rows = await run(lambda connection: connection.execute(statement, binds).all())

        def link(rel: str, page: list[tuple[str, str]]) -> dict[str, str]:
            return {"rel": rel, "href": f"{path}?{urlencode(kept + page)}"}

        size = str(limit)
        links = [link("self", [("offset", str(offset)), ("limit", size)]),
                 link("first", [("offset", "0"), ("limit", size)])]  # fmt: skip
        if offset > 0:
            links.append(link("prev", [("offset", str(max(offset - limit, 0))), ("limit", size)]))
        page = [as_dict(r) for r in rows[:limit]]
        if len(rows) > limit:
            links.append(link("next", [("limit", size), ("cursor", cursor_after(key_name, page[-1][key_name]))]))
        return json_response({table_name: page, "links": links})

    routes = [Route("/health", lambda request: json_response({"status": "ok"})),
              Route(path, list_rows), Route(f"{path}/{{id:int}}", read)]  # fmt: skip

    if bulk_table:
        bulk = Table(bulk_table, metadata, autoload_with=engine)
        bulk_keys = list(bulk.primary_key.columns)
        bulk_insert = insert(bulk).returning(*bulk_keys, sort_by_parameter_order=True)

        def insert_rows(rows: list[dict[str, Any]]) -> list[Any]:
            with engine.begin() as connection:
                return [row[0] if len(row) == 1 else list(row)
                        for row in connection.execute(bulk_insert, rows).all()]

        async def create_many(request: Request) -> Response:
            body = orjson.loads(await request.body())
            if not isinstance(body, list) or not body or not all(isinstance(r, dict) for r in body):
                return problem(400, "the body must be a non-empty array of objects")
            ids = await run_in_threadpool(insert_rows, body)
            return json_response({"message": f"Successfully added {len(ids)} resources.", "ids": ids}, 201)

        routes.append(Route(f"/{bulk_table}", create_many, methods=["POST"]))

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        engine.dispose()

    return Starlette(routes=routes, lifespan=lifespan)


app = build_app(os.environ["BASELINE_DATABASE_URL"], os.environ.get("BASELINE_TABLE", "items"),
                os.environ.get("BASELINE_FILTER_FIELD", "email"), os.environ.get("BASELINE_BULK_TABLE") or None,
                frozenset(n for n in os.environ.get("BASELINE_NUMBER_FIELDS", "").split(",") if n))
