"""The ASGI app of the DevOps API (mounted at `/api/v1/pp/devops`; it also answers `/data-products/{name}/versions`
paths when the dispatcher routes them here). A small table of routes → handlers; handlers are synchronous
(database work) and run in the thread pool; every error is answered in the seed's format."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from generator.codec import dumps, loads
from generator.identity.principal import principal_of
from generator.lifecycle.media import PREFERRED, check_request_type, response_type
from generator.lifecycle.problems import OdmProblem, bad_parameter
from generator.operations import name_route

log = logging.getLogger(__name__)
PREFIX = "/api/v1/pp/devops"
MAX_ID = 2**63 - 1
Handler = Callable[["Request"], tuple[int, Any]]


@dataclass
class Request:
    principal: Any
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    headers: dict[str, str]

    def flag(self, name: str, default: bool) -> bool:
        value = self.query.get(name)
        if value is None or value == "":
            return default
        if value.lower() not in ("true", "false"):
            raise bad_parameter(f"{name} must be true or false, not {value!r}")
        return value.lower() == "true"

    def ident(self, name: str = "id") -> int:
        return as_id(self.params[name], name)

    def secrets(self) -> dict[str, str]:
        """`x-odm-<executor>-executor-secret-<type>` headers: passed on to executors, never stored or logged."""
        return {k: v for k, v in self.headers.items() if k.startswith("x-odm-") and "-executor-secret-" in k}


def as_id(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= MAX_ID:
        raise bad_parameter(f"{name} must be a positive 64-bit integer, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    methods: dict[str, tuple[Handler, bool]]  # method → (handler, takes a body)

    @property
    def allow(self) -> str:
        return ", ".join(sorted({*self.methods, "OPTIONS"}))


def route(template: str, **methods: tuple[Handler, bool]) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(PREFIX + template, re.compile(f"^{regex}$"), methods)


class DevOpsApp:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        media = PREFERRED
        try:
            media = response_type(headers.get("accept"))
            status, body, extra = await self._handle(scope, receive, path, headers)
        except OdmProblem as problem:
            status, body, extra = problem.status, problem.body(path), []
            if problem.status == 405:
                extra = [(b"allow", self._match(path)[0].allow.encode())]  # type: ignore[union-attr]
            (log.warning if status < 500 else log.error)("%s %s: %d %s", scope["method"], path, status,
                                                         problem.message)
        except Exception:
            log.exception("%s %s failed", scope["method"], path)
            failure = OdmProblem(500, 50001, "Internal server error",
                                 "The request failed unexpectedly; see the service's log")
            status, body, extra = 500, failure.body(path), []
        payload = b"" if body is None else dumps(body)
        response_headers = [(b"content-type", media.encode()), (b"content-length", str(len(payload)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    def _match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        relative = path[len(PREFIX):] if path.startswith(PREFIX + "/") else path
        for candidate in self.routes:
            found = candidate.pattern.match(relative)
            if found:
                return candidate, found.groupdict()
        return None

    async def _handle(self, scope: Scope, receive: Receive, path: str,
                      headers: dict[str, str]) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        matched = self._match(path)
        if matched is None:
            raise OdmProblem(404, 40400, "Resource not found", f"No route of the DevOps API serves {path}")
        found, params = matched
        name_route(scope, found.template)  # the metrics' label: bounded, never an id
        method = scope["method"]
        if method == "OPTIONS":
            return 204, None, [(b"allow", found.allow.encode())]
        if method not in found.methods:
            raise OdmProblem(405, 40501, "Method not allowed", f"{method} is not an operation of {path}; it allows "
                                                               f"{found.allow}")
        handler, takes_body = found.methods[method]
        body = None
        if takes_body:
            check_request_type(headers.get("content-type"))
            body = _parse(await _read(receive))
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1"),
                                               keep_blank_values=True).items()}
        request = Request(principal_of(scope), params, query, body, headers)
        status, answer = await run_in_threadpool(handler, request)
        return status, answer, []


async def _read(receive: Receive) -> bytes:
    """The whole body: the dispatcher has already refused (413) one larger than the limit, or buffered it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        raise OdmProblem(400, 40000, "Request body is not readable", "The request needs a JSON body")
    try:
        return loads(raw)
    except ValueError as exc:
        raise OdmProblem(400, 40000, "Request body is not readable", f"The body is not JSON: {exc}") from None
