"""The benchmark's BASELINE: the least code that serves the same two routes as the service.

Plain Starlette + SQLAlchemy Core, no Connexion, no request validation, no OpenAPI. It reflects one
table that the service generated and serves

    GET /<table>/{id}                  -> the row as a JSON object (404 if absent)
    GET /<table>?offset=N&limit=M      -> {"<table>": [rows], "links": [...]}, rows ordered by the key

with the same response bodies as the service (`bench/run.py` checks they are identical before it
measures). Endpoints are plain `def` functions, so Starlette runs them in its thread pool exactly as the
service runs its database work; JSON is written with orjson; the engine has the service's pool settings
(pool size 10, max overflow 20, psycopg 3 on PostgreSQL).

Configuration (environment): BASELINE_DATABASE_URL (SQLAlchemy URL), BASELINE_TABLE (default `items`).
Run: `python -m uvicorn --app-dir bench baseline_app:app --workers 2`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Engine, MetaData, Table, bindparam, create_engine, select
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # a raw JSON number, as the service writes it
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, default=_default), status_code=status, media_type="application/json")


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return create_engine(parsed)  # SQLAlchemy's defaults for a file database, as the service gets
    return create_engine(parsed, pool_size=10, max_overflow=20, pool_recycle=1800,
                         json_serializer=lambda v: orjson.dumps(v).decode(), json_deserializer=orjson.loads)


def build_app(url: str, table_name: str) -> Starlette:
    engine = make_engine(url)
    table = Table(table_name, MetaData(), autoload_with=engine)
    key = next(iter(table.primary_key.columns))
    names = [str(c.name) for c in table.columns]  # reflection gives quoted_name, which orjson refuses as a key
    select_one = select(table).where(key == bindparam("_k0"))
    select_page = select(table).order_by(key).limit(bindparam("_limit")).offset(bindparam("_offset"))
    path = f"/{table_name}"

    def problem(status: int, detail: str) -> Response:
        return Response(orjson.dumps({"status": status, "detail": detail}), status_code=status,
                        media_type="application/problem+json")

    def read(request: Request) -> Response:
        with engine.connect() as connection:
            row = connection.execute(select_one, {"_k0": request.path_params["id"]}).first()
        if row is None:
            return problem(404, f"No {table_name} row has this key")
        return json_response(dict(zip(names, row, strict=True)))

    def list_rows(request: Request) -> Response:
        try:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return problem(400, "offset and limit must be integers")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            return problem(400, f"offset must be >= 0 and limit within 1..{MAX_LIMIT}")
        with engine.connect() as connection:
            rows = connection.execute(select_page, {"_limit": limit + 1, "_offset": offset}).all()
        links = [{"rel": "self", "href": f"{path}?offset={offset}&limit={limit}"},
                 {"rel": "first", "href": f"{path}?offset=0&limit={limit}"}]  # fmt: skip
        if offset > 0:
            links.append({"rel": "prev", "href": f"{path}?offset={max(offset - limit, 0)}&limit={limit}"})
        if len(rows) > limit:
            links.append({"rel": "next", "href": f"{path}?offset={offset + limit}&limit={limit}"})
        return json_response({table_name: [dict(zip(names, r, strict=True)) for r in rows[:limit]], "links": links})

    def health(request: Request) -> Response:
        return json_response({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        engine.dispose()

    return Starlette(
        routes=[
            Route("/health", health),
            Route(path, list_rows),
            Route(f"{path}/{{id:int}}", read),
        ],
        lifespan=lifespan,
    )


app = build_app(os.environ["BASELINE_DATABASE_URL"], os.environ.get("BASELINE_TABLE", "items"))
