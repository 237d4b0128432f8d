"""The routes, a Starlette app the dispatcher mounts at `/openapi` (it authenticates first: the caller is
`principal_of(scope)`). Shapes follow DataHub's OpenAPI guide (seed 002); see README.md for each route.

Handlers parse and check the request (400 naming the place with a JSON pointer, `/query/<name>` for query
parameters), check access (`access.Rules`), then run one transaction in a worker thread."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from orjson import Fragment
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from generator.api.docs import build_docs_app
from generator.codec import dumps, loads
from generator.errors import Issue, Problem, bad_request, not_found
from generator.identity import Principal, principal_of
from generator.metadata import store
from generator.metadata.access import Rules, generated_schema
from generator.metadata.aspects import (
    ASPECTS,
    GENERATED,
    RELATIONSHIP_TYPES,
    aspect_name,
    bad_link,
    type_name,
    unknown_aspect,
)
from generator.metadata.document import document
from generator.metadata.patch import PatchError, apply_patch, check_keys
from generator.metadata.store import AspectRecord, Condition, EntityExists, PreconditionFailed
from generator.metadata.timeline import CATEGORIES, timeline
from generator.metadata.urns import CONTROL, ENTITY_TYPES, BadUrn, Urn, parse_urn, user_urn
from generator.models.engine import for_writes, reading
from generator.pointers import child

MAX_ITEMS = 1000
SWAGGER = "/openapi/swagger-ui"
MAX_COUNT = 1000
MAX_VERSION = 2**31 - 1  # versions are a 32-bit INTEGER column: a larger one never exists


# Every byte to a space but digits to "0": a body without twenty "0"s in a row has no integer orjson would round
DIGIT_RUNS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
LONG_RUN = b"0" * 20


def _loads(body: bytes) -> Any:
    """JSON with integers of 20 digits or more kept exact, as `codec.loads`, with the digit-run check done by
    `bytes.translate` and `find` (14 us for a 14 KB batchGet body) instead of a regex (200 us). orjson reads
    it first in every case: it refuses what is malformed or nested deeper than 1024, which `json` would
    only meet with a RecursionError."""
    value = orjson.loads(body)
    return value if body.translate(DIGIT_RUNS).find(LONG_RUN) < 0 else loads(body)


def problem_response(problem: Problem) -> Response:
    body = {"type": problem.type or "about:blank", "title": problem.title, "status": problem.status,
            "detail": problem.detail, **(problem.ext or {})}
    return Response(dumps(body), problem.status, headers=problem.headers, media_type="application/problem+json")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status, media_type="application/json")


def precondition(exc: PreconditionFailed) -> Problem:
    return Problem(412, "Precondition Failed", f"{exc}; nothing was written")


@dataclass(frozen=True)
class Call:
    """One request, as the handlers see it."""

    principal: Principal
    query: Any  # starlette QueryParams
    headers: Mapping[str, str]
    path: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body:
            raise bad_request("The request needs a JSON body", [Issue("", "is empty")])
        try:
            return _loads(self.body)
        except ValueError as exc:
            raise bad_request(f"The body is not JSON: {exc}", [Issue("", "is not JSON")]) from None
        except RecursionError:  # within orjson's depth, beyond Python's (a long integer sends it to `json`)
            raise bad_request("The body is nested too deeply", [Issue("", "is nested too deeply")]) from None

    def values(self, name: str) -> list[str]:
        """A list parameter: repeated, or comma-separated where the values cannot hold commas."""
        return [v for raw in self.query.getlist(name) for v in raw.split(",") if v]

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.query.get(name)
        if raw is None:
            return default
        if raw.lower() not in ("true", "false"):
            raise bad_request(f"{name} is true or false", [Issue(f"/query/{name}", "must be true or false")])
        return raw.lower() == "true"

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise bad_request(f"{name} is an integer from {low} to {high}",
                              [Issue(f"/query/{name}", f"must be an integer from {low} to {high}")])
        return value


def parse(text: object, pointer: str, entity_type: str | None = None) -> Urn:
    try:
        urn = parse_urn(text)
    except BadUrn as exc:
        raise bad_request(f"Bad URN: {exc}", [Issue(pointer, str(exc))]) from None
    if entity_type is not None and urn.entity_type != entity_type:
        message = f"is a {urn.entity_type} URN, not a {entity_type} one"
        raise bad_request(f"{urn} {message}", [Issue(pointer, message)])
    return urn


def _check_links(aspect: str, value: Mapping[str, Any], pointer: str) -> None:
    reason = bad_link(aspect, value)
    if reason is not None:
        raise bad_request(f"Bad relationship: {reason}", [Issue(pointer, reason)])


def check_aspect(urn: Urn, aspect: str, pointer: str) -> None:
    reason = unknown_aspect(urn.entity_type, aspect)
    if reason is not None:
        raise bad_request(f"Unknown aspect: {reason}", [Issue(pointer, reason)])


def condition_of(headers: Mapping[str, Any], pointer: str) -> Condition:
    """`If-Version-Match: N` and/or `If-None-Match: *` from HTTP headers or a body item's `headers`."""
    found = {k.lower(): v for k, v in headers.items()}
    version, absent = found.get("if-version-match"), found.get("if-none-match")
    if absent is not None and str(absent).strip() != "*":
        raise bad_request("If-None-Match takes only *", [Issue(child(pointer, "If-None-Match"), "must be *")])
    if version is not None:
        text = str(version).strip().strip('"')
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_VERSION:
            raise bad_request("If-Version-Match is a version number (1, 2, ...)", [Issue(
                child(pointer, "If-Version-Match"), f"must be a positive integer up to {MAX_VERSION}")])
        return Condition(version=int(text), absent=absent is not None)
    return Condition(absent=absent is not None)


def system_metadata(record: AspectRecord) -> dict[str, Any]:
    return {"version": str(record.version), "lastObserved": record.millis, "runId": record.run_id,
            "lastRunId": record.run_id, "properties": {"actor": record.actor,
                                                       "appSource": "generator" if record.system else "api"}}


def v1_aspect(record: AspectRecord) -> dict[str, Any]:
    return {"name": record.aspect, "type": "VERSIONED", "version": record.version,
            "value": {"__type": type_name(record.aspect), **record.value},
            "created": {"time": record.millis, "actor": record.actor}}


class MetadataRoutes:
    def __init__(self, engine: Engine, rules: Rules) -> None:
        self.engine, self.rules = engine, rules
        self.writer = for_writes(engine)
        # Reads of one statement need no transaction: on PostgreSQL, no BEGIN and ROLLBACK round trips
        postgres = engine.dialect.name == "postgresql"
        self.reader = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine

    # -- plumbing ------------------------------------------------------------------------------------

    def route(self, path: str, **methods: Callable[[Call], Response]) -> Route:
        async def endpoint(request: Request) -> Response:
            call = Call(principal_of(request.scope), request.query_params, request.headers, request.path_params,
                        await request.body())
            try:
                return await run_in_threadpool(methods.get(request.method) or methods["GET"], call)  # HEAD
            except Problem as problem:
                return problem_response(problem)

        return Route(path, endpoint, methods=list(methods))

    def app(self) -> ASGIApp:
        """The routes, and Swagger UI at /openapi/swagger-ui/ for /openapi/v3/api-docs."""
        routes = self._routes()
        docs = build_docs_app("/openapi/v3/api-docs", SWAGGER)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            target = docs if path == SWAGGER or path.startswith(SWAGGER + "/") else routes
            await target(scope, receive, send)

        return app

    def _routes(self) -> Starlette:
        spec = dumps(document(self.rules.platform, self.rules.env))

        async def api_docs(_: Request) -> Response:
            return Response(spec, media_type="application/json")

        async def http_problem(_: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            titles = {404: "Not Found", 405: "Method Not Allowed"}
            details = {404: "No metadata-graph route serves this path; see /openapi/v3/api-docs",
                       405: "The route does not take this method; see /openapi/v3/api-docs"}
            return problem_response(Problem(status, titles.get(status, "Error"), details.get(
                status, "The metadata graph failed on this request"), headers=getattr(exc, "headers", None)))

        return Starlette(exception_handlers={HTTPException: http_problem}, routes=[
            Route("/openapi/v3/api-docs", api_docs),
            self.route("/openapi/entities/v1/", POST=self.upsert, DELETE=self.delete),
            self.route("/openapi/entities/v1/latest", GET=self.latest),
            self.route("/openapi/v3/entity/{entity_name}/batchGet", POST=self.batch_get),
            self.route("/openapi/v3/entity/{entity_name}/{urn}/{aspect}", PATCH=self.patch),
            self.route("/openapi/relationships/v1/", GET=self.relationships),
            self.route("/openapi/v2/timeline/v1/{urn}", GET=self.timeline),
        ])

    def transaction(self, work: Callable[[Connection], Any]) -> Any:
        """One write transaction; a lost race on a new row (two first writers) is retried once."""
        for attempt in (1, 2):
            try:
                with self.writer.begin() as connection:
                    return work(connection)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def readable(self, principal: Principal, urns: Iterable[Urn]) -> None:
        for urn in urns:
            self.rules.check_read(principal, urn)

    # -- POST /openapi/entities/v1/ ----------------------------------------------------------------------

    def upsert(self, call: Call) -> Response:
        items = call.json()
        if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
            raise bad_request(f"The body is an array of 1 to {MAX_ITEMS} aspect writes",
                              [Issue("", f"must be an array of 1 to {MAX_ITEMS} items")])
        writes = [self._write_item(item, f"/{index}", call.headers) for index, item in enumerate(items)]
        for urn in {w[0].text: w[0] for w in writes}.values():
            self.rules.check_write(call.principal, urn)
        create_only = call.flag("createEntityIfNotExists")
        actor = user_urn(call.principal.subject)

        def work(connection: Connection) -> None:
            created: set[str] = set()
            if create_only:
                for urn in {w[0].text: w[0] for w in writes}.values():
                    if not store.ensure_entity(connection, urn):
                        raise EntityExists(urn.text)
                    created.add(urn.text)
            for urn, aspect, value, condition, run_id in sorted(writes, key=lambda w: (w[0].text, w[1])):
                store.write_aspect(connection, urn, aspect, value, actor=actor, run_id=run_id, condition=condition,
                                   guard=self._guard(urn, aspect))

        try:
            self.transaction(work)
        except PreconditionFailed as exc:
            raise precondition(exc) from None
        except EntityExists as exc:
            raise Problem(422, "Unprocessable Entity", f"Cannot perform CREATE if not exists since the entity key "
                                                       f"already exists: {exc}; nothing was written") from None
        return json_response([w[0].text for w in writes])

    def _write_item(self, item: Any, pointer: str, headers: Mapping[str, str]
                    ) -> tuple[Urn, str, dict[str, Any], Condition, str]:
        if not isinstance(item, dict):
            raise bad_request("Each item is an object {entityType, entityUrn, aspect}",
                              [Issue(pointer, "must be an object")])
        entity_type = item.get("entityType")
        if entity_type not in ENTITY_TYPES:
            raise bad_request("Unknown entityType", [Issue(f"{pointer}/entityType",
                                                           f"must be one of {', '.join(ENTITY_TYPES)}")])
        urn = parse(item.get("entityUrn"), f"{pointer}/entityUrn", entity_type)
        value = item.get("aspect")
        if not isinstance(value, dict):
            raise bad_request("The aspect is an object with its __type",
                              [Issue(f"{pointer}/aspect", "must be an object")])
        value = dict(value)
        type_ = value.pop("__type", None)
        named = item.get("aspectName")
        if type_ is None and named is None:
            raise bad_request("Name the aspect", [Issue(f"{pointer}/aspect/__type", "is required (or aspectName)")])
        aspect = aspect_name(str(type_)) if type_ is not None else str(named)
        where = f"{pointer}/aspect/__type" if type_ is not None else f"{pointer}/aspectName"
        if named is not None and type_ is not None and aspect_name(str(type_)) != named:
            raise bad_request("aspectName and __type disagree", [Issue(f"{pointer}/aspectName",
                                                                       f"is {named!r} but __type names {aspect!r}")])
        check_aspect(urn, aspect, where)
        own = item.get("headers")
        if own is not None and not isinstance(own, dict):
            raise bad_request("headers is an object", [Issue(f"{pointer}/headers", "must be an object")])
        condition = condition_of(own if own is not None else dict(headers),
                                 f"{pointer}/headers" if own is not None else "/headers")
        meta = item.get("systemMetadata") if isinstance(item.get("systemMetadata"), dict) else {}
        run_id = str(meta.get("runId") or store.DEFAULT_RUN_ID)[:200]
        if CONTROL.search(run_id):
            raise bad_request("A runId has no control characters",
                              [Issue(f"{pointer}/systemMetadata/runId", "must not contain control characters")])
        _check_links(aspect, value, f"{pointer}/aspect")
        return urn, aspect, value, condition, run_id

    def _guard(self, urn: Urn, aspect: str) -> Callable[[AspectRecord | None], None] | None:
        if aspect not in GENERATED:
            return None

        def guard(current: AspectRecord | None) -> None:
            if current is not None and current.system:
                raise generated_schema(urn.text)

        return guard

    # -- GET /openapi/entities/v1/latest ----------------------------------------------------------------

    def _urns(self, call: Call, name: str = "urns", entity_type: str | None = None) -> list[Urn]:
        raw = call.query.getlist(name)
        if not raw:
            raise bad_request(f"Name the entities with {name}", [Issue(f"/query/{name}", "is required")])
        if len(raw) > MAX_ITEMS:
            raise bad_request(f"At most {MAX_ITEMS} URNs", [Issue(f"/query/{name}", f"has more than {MAX_ITEMS}")])
        return [parse(text, f"/query/{name}/{index}", entity_type) for index, text in enumerate(raw)]

    def latest(self, call: Call) -> Response:
        urns = self._urns(call)
        names = call.values("aspectNames") or None
        for index, name in enumerate(names or []):
            if all(unknown_aspect(u.entity_type, name) for u in urns):
                check_aspect(urns[0], name, f"/query/aspectNames/{index}")
        self.readable(call.principal, urns)
        include_removed = call.flag("includeSoftDeleted")

        def work(connection: Connection) -> dict[str, Any]:
            removed, records = store.entities_latest(connection, [u.text for u in urns], names)
            shown = [u for u in urns if u.text in removed and (include_removed or not removed[u.text])]
            return {"responses": {u.text: {"entityName": u.entity_type, "urn": u.text, "aspects": {
                name: v1_aspect(r) for name, r in records.get(u.text, {}).items()}} for u in shown}}

        return json_response(reading(self.reader, work))

    # -- DELETE /openapi/entities/v1/ -------------------------------------------------------------------

    def delete(self, call: Call) -> Response:
        urns = self._urns(call)
        soft = call.flag("soft", default=True)
        for urn in urns:
            self.rules.check_write(call.principal, urn)
        actor = user_urn(call.principal.subject)

        def work(connection: Connection) -> list[dict[str, Any]]:
            found = store.entity_rows(connection, [u.text for u in urns])
            missing = [u.text for u in urns if u.text not in found]
            if missing:
                raise not_found(f"No entity {', '.join(missing)}; nothing was deleted")
            answers = {}
            for urn in sorted(urns, key=lambda u: u.text):  # in the order every writer locks
                if soft:
                    store.write_aspect(connection, urn, "status", lambda c: {**(c.value if c else {}), "removed": True},
                                       actor=actor, skip_unchanged=True)
                    answers[urn.text] = {"rowsRolledBack": [{"urn": urn.text}], "rowsDeletedFromEntityDeletion": 0}
                    continue
                schema = store.latest(connection, [urn.text], GENERATED).get(urn.text, {})
                if any(r.system for r in schema.values()):
                    raise Problem(409, "Conflict", f"{urn} is a table the generator publishes; drop the table from "
                                                   "the generation payload and regenerate (it is then soft-deleted), "
                                                   "or soft-delete it; nothing was deleted")
                rows = store.hard_delete(connection, urn.text)
                answers[urn.text] = {"rowsRolledBack": [{"urn": urn.text}], "rowsDeletedFromEntityDeletion": rows}
            return [answers[u.text] for u in urns]

        return json_response(self.transaction(work))

    # -- POST /openapi/v3/entity/{entityName}/batchGet ---------------------------------------------------

    def batch_get(self, call: Call) -> Response:
        entity_type = self._entity_type(call)
        items = call.json()
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise bad_request(f"The body is an array of at most {MAX_ITEMS} items",
                              [Issue("", f"must be an array of at most {MAX_ITEMS} items")])
        wanted: list[tuple[Urn, dict[str, int | None]]] = []
        known = ASPECTS[entity_type]
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise bad_request("Each item is an object {urn, <aspect>: {}}",
                                  [Issue(f"/{index}", "must be an object")])
            urn = parse(item.get("urn"), f"/{index}/urn", entity_type)
            aspects: dict[str, int | None] = {}
            for name, options in item.items():
                if name == "urn":
                    continue
                if name not in known:
                    check_aspect(urn, name, child(f"/{index}", name))
                headers = options.get("headers") if isinstance(options, dict) else None
                aspects[name] = (condition_of(headers, f"{child(f'/{index}', name)}/headers").version
                                 if isinstance(headers, dict) else None)
            wanted.append((urn, aspects))
        self.readable(call.principal, [u for u, _ in wanted])
        with_system = call.flag("systemMetadata")
        include_removed = call.flag("includeSoftDeleted")

        names = None if any(not a for _, a in wanted) else {n for _, a in wanted for n in a}

        def work(connection: Connection) -> list[dict[str, Any]]:
            removed, current = store.entities_latest(connection, [u.text for u, _ in wanted], names)
            old = store.versions(connection, [(u.text, a, v) for u, aspects in wanted for a, v in aspects.items()
                                              if v is not None])  # versions never change: no snapshot needed
            answer = []
            for urn, aspects in wanted:
                gone = removed.get(urn.text)
                if gone is None or (gone and not include_removed):
                    continue
                entry: dict[str, Any] = {"urn": urn.text}
                mine = current.get(urn.text, {})
                for name in aspects or mine:
                    version = aspects.get(name)
                    record = old.get((urn.text, name, version)) if version else mine.get(name)
                    if record is None:
                        continue
                    entry[name] = found = {"value": Fragment(record.text)}  # the stored text: no parse, no dumps
                    if with_system:
                        found["systemMetadata"] = system_metadata(record)
                answer.append(entry)
            return answer

        return json_response(reading(self.reader, work))

    def _entity_type(self, call: Call) -> str:
        entity_type = call.path["entity_name"]
        if entity_type not in ENTITY_TYPES:
            raise not_found(f"No entity type {entity_type!r}; the graph has {', '.join(ENTITY_TYPES)}")
        return entity_type

    # -- PATCH /openapi/v3/entity/{entityName}/{urn}/{aspect} --------------------------------------------

    def patch(self, call: Call) -> Response:
        entity_type = self._entity_type(call)
        urn = parse(call.path["urn"], "/path/urn", entity_type)
        aspect = call.path["aspect"]
        check_aspect(urn, aspect, "/path/aspect")
        body = call.json()
        if isinstance(body, list):
            body = {"patch": body}
        if not isinstance(body, dict):
            raise bad_request("The body is {patch: [...], arrayPrimaryKeys: {...}}", [Issue("", "must be an object")])
        unknown = sorted(set(body) - {"patch", "arrayPrimaryKeys", "forceGenericPatch"})
        if unknown:
            raise bad_request("Unknown members", [Issue(child("", k), "is not a member of a patch") for k in unknown])
        try:
            keys = check_keys(body.get("arrayPrimaryKeys"))
        except PatchError as exc:
            raise bad_request("Bad arrayPrimaryKeys", exc.issues) from None
        condition = condition_of(dict(call.headers), "/headers")
        self.rules.check_write(call.principal, urn)

        def patched(current: AspectRecord | None) -> dict[str, Any]:
            value = apply_patch(current.value if current else {}, body.get("patch"), keys)
            _check_links(aspect, value, "/patch")
            return value

        def work(connection: Connection) -> AspectRecord | None:
            return store.write_aspect(connection, urn, aspect, patched, actor=user_urn(call.principal.subject),
                                      condition=condition, guard=self._guard(urn, aspect))

        try:
            record = self.transaction(work)
        except PatchError as exc:
            raise bad_request(f"The patch does not apply to {aspect} of {urn}; nothing was written",
                              exc.issues) from None
        except PreconditionFailed as exc:
            raise precondition(exc) from None
        assert record is not None
        return json_response({"urn": urn.text,
                              aspect: {"value": record.value, "systemMetadata": system_metadata(record)}})

    # -- GET /openapi/relationships/v1/ -----------------------------------------------------------------

    def relationships(self, call: Call) -> Response:
        raw = call.query.get("urn")
        if raw is None:
            raise bad_request("Name the entity with urn", [Issue("/query/urn", "is required")])
        urn = parse(raw, "/query/urn")
        types = call.values("relationshipTypes")
        for index, kind in enumerate(types):
            if kind not in RELATIONSHIP_TYPES:
                allowed = ", ".join(RELATIONSHIP_TYPES)
                raise bad_request("Unknown relationship type",
                                  [Issue(f"/query/relationshipTypes/{index}", f"must be one of {allowed}")])
        direction = call.query.get("direction", "OUTGOING")
        if direction not in ("INCOMING", "OUTGOING"):
            raise bad_request("direction is INCOMING or OUTGOING", [Issue("/query/direction",
                                                                          "must be INCOMING or OUTGOING")])
        start = call.integer("start", 0, 0, 2**31 - 1) or 0
        count = call.integer("count", 200, 0, MAX_COUNT) or 0
        self.rules.check_read(call.principal, urn)
        include_removed = call.flag("includeSoftDeleted")
        total, page = reading(self.engine, lambda c: store.related(c, urn.text, types, direction, start, count,
                                                                   include_removed))
        return json_response({"start": start, "count": len(page), "total": total,
                              "entities": [{"relationshipType": kind, "urn": found} for kind, found in page]})

    # -- GET /openapi/v2/timeline/v1/{urn} --------------------------------------------------------------

    def timeline(self, call: Call) -> Response:
        urn = parse(call.path["urn"], "/path/urn")
        categories = call.values("categories") or list(CATEGORIES)
        for index, category in enumerate(categories):
            if category not in CATEGORIES:
                raise bad_request("Unknown change category", [Issue(f"/query/categories/{index}",
                                                                    f"must be one of {', '.join(CATEGORIES)}")])
        start = call.integer("startTime", None, -1, 2**63 - 1)
        end = call.integer("endTime", None, -1, 2**63 - 1)
        self.rules.check_read(call.principal, urn)

        def work(connection: Connection) -> list[AspectRecord] | None:
            if urn.text not in store.entity_rows(connection, [urn.text]):
                return None
            return store.history(connection, urn.text)

        records = reading(self.engine, work)
        if records is None:
            raise not_found(f"No entity {urn}")
        return json_response(timeline(records, frozenset(categories), None if start in (None, -1) else start,
                                      None if end in (None, -1) else end))
