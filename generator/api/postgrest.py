"""The PostgREST-compatible surface: the current generation's tables again, under `REST_PREFIX` (`/rest`).

Existing PostgREST clients (supabase-py's `postgrest`, postgrest-js, curl recipes) work unchanged, because the
shapes are PostgREST's: bare JSON arrays, `Range`/`Content-Range`, `Prefer`, `vnd.pgrst.object+json`, filters
on writes, and `{code, message, details, hint}` errors with PostgREST's statuses. Nothing is built twice: each
request runs the generation's `ResourceEndpoints` parts (query grammar, plans, executor, row reader, key codec,
body validators), so the two surfaces always filter, convert and refuse alike.

The payload's whitelist still decides which operations exist. Per table:

    GET/HEAD /rest/t?filters      needs GET /t          (the list route)
    POST /rest/t                  needs POST /t         (one row or an array: bulk insert)
      Prefer: resolution=ignore-duplicates            POST /t
      Prefer: resolution=merge-duplicates             POST /t and PATCH or PUT /t/{id} (it changes rows)
    PATCH /rest/t?filters         needs PATCH /t/{id}
    DELETE /rest/t?filters        needs DELETE /t/{id}
    OPTIONS /rest/t               always: `Allow` lists what the whitelist enables

A table with none of these is 404 (PGRST205, as PostgREST answers a table it cannot see); a method the
whitelist does not enable is 405 (PGRST117) with `Allow`.

Supported: filters (`eq neq gt gte lt lte like ilike in is`, `not.`, `or=`/`and=` trees, `col->>key`), `select=`
with embeds, `order=`, `limit`/`offset` and `Range: 0-9` (with or without `Range-Unit: items`), answered by
`Content-Range` and 206 when counted and partial, `Prefer: count=exact|planned|estimated`, `Prefer:
return=minimal|representation|headers-only`, `Accept: application/vnd.pgrst.object+json` (406 PGRST116 unless
exactly one row; a write is rolled back then), `Accept: text/csv`, `nulls=stripped`, `columns=` on inserts,
`on_conflict=` naming the primary key or a unique field set, filtered PATCH and DELETE.

Differences and what is not supported:
- No RPC (`/rest/rpc/*` is 404 PGRST202), no views, one schema: `Accept-Profile`/`Content-Profile` other than
  `public` is 406 PGRST106. `GET /rest/` serves no OpenAPI document (404 PGRST125); see `/openapi.json`.
- A read without `limit` returns at most `MAX_PAGE_SIZE` rows (PostgREST's `db-max-rows`), ordered by key.
- PATCH and DELETE need at least one filter (21000, as with `pg-safeupdate` on Supabase); `limit`/`order` on
  them are refused. PATCH cannot change primary-key fields (428C9): keys are addresses on the native routes.
- PUT (single-row upsert by filter), `Prefer: tx=`, `handling=strict`, `max-affected`, aggregates,
  embedded filters/order (`t.col=eq.x`), spread and computed columns are not supported.
- A row's absent columns always take their default (as with `Prefer: missing=default`).
- Errors raised before a request reaches this surface (401 without a token, 413 for a body over the limit,
  400 for too many query parameters) stay problem+json, as everywhere in the service."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from generator.api.build import ServedApi
from generator.api.dataplane import without_body
from generator.api.plans import Row
from generator.api.postgrest_shapes import Call, PgrstError, as_pgrst, not_single, render_rows, translate
from generator.api.postgrest_writes import delete_rows, insert_rows, update_rows
from generator.api.query import ReadQuery
from generator.api.render import PGRST_OBJECT, content_range
from generator.errors import Problem
from generator.payload.specs import Generation

log = logging.getLogger("generator.api.postgrest")
KIND_OF_METHOD = {"GET": "list", "HEAD": "list", "POST": "create", "PATCH": "update", "DELETE": "delete"}
SURFACE_KINDS = frozenset({"list", "create", "update", "replace", "delete"})
METHODS_OF_KIND = {"list": ("GET", "HEAD"), "create": ("POST",), "update": ("PATCH",), "delete": ("DELETE",)}
RANGE = re.compile(r"^\s*(?:items=)?(\d{1,18})-(\d{0,18})\s*$")
SCHEMA = "public"
SERVER_ERROR = PgrstError(500, "XX000", "The service failed to answer this request; the error is logged. "
                                        "Nothing was written unless a 2xx said so.")


async def serve_rest(current: ServedApi, scope: Scope, receive: Receive, send: Send, prefix: str = "/rest") -> None:
    """Answer one request under `prefix`, every refusal in PostgREST's error shape."""
    request = Request(scope, receive)
    try:
        response = await _route(current, request, prefix.rstrip("/"))
    except PgrstError as error:
        response = error.response()
    except Problem as problem:
        if problem.status >= 500:
            log.error("%s %s: %s", scope["method"], scope["path"], problem.detail)
        response = translate(problem).response()
    except Exception:
        log.exception("%s %s failed", scope["method"], scope["path"])
        response = SERVER_ERROR.response()
    await response(scope, receive, without_body(send) if scope["method"] == "HEAD" else send)


async def _route(current: ServedApi, request: Request, prefix: str) -> Response:
    name = request.scope["path"][len(prefix):].strip("/")
    if not name or "/" in name:
        if name == "rpc" or name.startswith("rpc/"):
            raise PgrstError(404, "PGRST202", "Functions (/rpc) are not supported by this service",
                             hint="Only tables are served, at <prefix>/<table>")
        raise PgrstError(404, "PGRST125", "Invalid path specified in request URL",
                         hint=f"Tables are served at {prefix}/<table>; the OpenAPI document is /openapi.json")
    _check_profiles(request)
    allowed = allowed_kinds(current.generation, name)
    endpoints = current.resources.get(name)
    if endpoints is None or not allowed:
        raise _no_table(current.generation, name)
    allow = ", ".join(sorted({m for kind in allowed for m in METHODS_OF_KIND.get(kind, ())} | {"OPTIONS"}))
    method = request.method
    if method == "OPTIONS":
        return Response(status_code=200, headers={"Allow": allow})
    kind = KIND_OF_METHOD.get(method)
    if kind is None or kind not in allowed:
        raise PgrstError(405, "PGRST117", f"Unsupported HTTP method: {method}",
                         f"The generation's whitelist does not enable {method} on {prefix}/{name}",
                         f"This table allows {allow}", {"Allow": allow})
    if current.guard is not None:  # the same policy as the native routes: decision, row filter, write check
        current.guard.admit(request, name, "read" if kind == "list" else "write", name)
    return await HANDLERS[kind](Call(endpoints, request, prefix, allowed))


def allowed_kinds(generation: Generation, name: str) -> frozenset[str]:
    """The operation kinds the whitelist enables for a table, among those this surface maps (see above)."""
    return frozenset(op.kind for op in generation.operations_for(name)
                     if op.related is None and op.kind in SURFACE_KINDS and (op.kind, op.method) != ("query", "get"))


def _check_profiles(request: Request) -> None:
    for header in ("accept-profile", "content-profile"):
        schema = request.headers.get(header)
        if schema is not None and schema.strip() != SCHEMA:
            raise PgrstError(406, "PGRST106", f"The schema must be one of the following: {SCHEMA}",
                             hint="This service serves one schema; drop the profile header")


def _no_table(generation: Generation, name: str) -> PgrstError:
    served = sorted(r.name for r in generation.resources if allowed_kinds(generation, r.name))
    close = difflib.get_close_matches(name, served, n=1)
    hint = f"Perhaps you meant the table '{SCHEMA}.{close[0]}'" if close else None
    return PgrstError(404, "PGRST205", f"Could not find the table '{SCHEMA}.{name}' in the schema cache", None, hint)


# -- reads --------------------------------------------------------------------------------------------------


async def read_rows(call: Call) -> Response:
    """GET/HEAD: a bare array (or one object), `Content-Range`, 206 when a counted result is partial."""
    endpoints, prefer = call.endpoints, call.prefer
    media = call.media()
    query, wanted = read_query(call)
    embed_filters = call.request.scope.get("drg.embed_filters")

    def work(connection: Connection) -> tuple[list[Row], int | None]:
        rows = endpoints.plan.rows(connection, query, call.row_filter)[0] if wanted else []
        if rows and query.embeds:
            endpoints.plan.embed(connection, rows, query.embeds, embed_filters)
        total = endpoints.plan.count(connection, query, call.row_filter, prefer.count) if prefer.count else None
        return rows, total

    rows, total = await endpoints.executor.read(work)
    rows = endpoints.project(rows, query)
    if total is not None and not rows and 0 < query.offset and total <= query.offset:
        raise PgrstError(416, "PGRST103", "Requested range not satisfiable",
                         f"An offset of {query.offset} was requested, but there are only {total} rows.",
                         headers={"Content-Range": f"*/{total}"})
    if media == PGRST_OBJECT and len(rows) != 1:
        raise not_single(len(rows))
    headers = {"Content-Range": content_range(query.offset, len(rows), total), "Range-Unit": "items"}
    status = 206 if total is not None and len(rows) < total else 200
    names = list(query.select) if query.select else endpoints.plan.names
    return render_rows(rows, media, status, headers, call.strip_nulls, names)


def read_query(call: Call) -> tuple[ReadQuery, int]:
    """The grammar's query, with the page PostgREST would take: `limit`/`offset` intersected with `Range`,
    capped at the service's largest page. Returns the query and the rows wanted (0 for `limit=0`)."""
    paging = {n: v for n, v in call.pairs if n in ("limit", "offset")}
    with as_pgrst("PGRST100"):
        query = call.endpoints.grammar.parse([(n, v) for n, v in call.pairs if n not in ("limit", "offset")])
    start = _natural(paging, "offset") or 0
    limit = _natural(paging, "limit")
    end = None if limit is None else start + limit - 1
    requested = requested_range(call.request)
    if requested is not None:
        start, end = max(start, requested[0]), _lowest(end, requested[1])
    max_rows = call.endpoints.grammar.max_limit
    wanted = max_rows if end is None else min(end - start + 1, max_rows)
    if wanted < 0:
        raise PgrstError(416, "PGRST103", "Requested range not satisfiable",
                         "The Range header and the limit/offset parameters select no rows together")
    return replace(query, offset=start, limit=max(wanted, 1)), wanted


def _natural(paging: dict[str, str], name: str) -> int | None:
    text = paging.get(name)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 18:
        raise PgrstError(400, "PGRST100", f"\"failed to parse {name} parameter ({text})\"",
                         f"{name} must be a whole number of at most 18 digits")
    return int(text)


def _lowest(first: int | None, second: int | None) -> int | None:
    known = [v for v in (first, second) if v is not None]
    return min(known) if known else None


def requested_range(request: Request) -> tuple[int, int | None] | None:
    """`Range: 0-9` (or `items=0-9`), first and last row inclusive; None without one or in another unit."""
    value = request.headers.get("range")
    if value is None or (request.headers.get("range-unit") or "items").strip().lower() != "items":
        return None
    found = RANGE.match(value)
    if found is None or (found[2] and int(found[2]) < int(found[1])):
        raise PgrstError(416, "PGRST103", "Requested range not satisfiable",
                         f"Range {value!r} is not first-last rows with first <= last")
    return int(found[1]), int(found[2]) if found[2] else None


HANDLERS: dict[str, Callable[[Call], Awaitable[Response]]] = {
    "list": read_rows, "create": insert_rows, "update": update_rows, "delete": delete_rows,
}  # fmt: skip
