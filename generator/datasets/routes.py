"""The `/v1/ds` ASGI app: the seed's routes, its own authentication, problem+json for every refusal.

The dispatcher hands every `/v1/ds/...` request here untouched (`Mount(authenticates_itself=True)`), so this
app checks credentials, body sizes and routes itself. Work that blocks (boto3, the database) runs in worker
threads."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from importlib import metadata as package_metadata
from typing import Any

from anyio import to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from generator.asgi import header, problem, send_bytes, send_problem
from generator.codec import dumps
from generator.datasets.config import ConfigurationMissing, DatasetsConfig
from generator.datasets.service import Datasets
from generator.errors import Issue, Problem, bad_request
from generator.identity import DEVELOPER, Principal
from generator.identity.authenticate import Refused
from generator.operations import name_route

log = logging.getLogger("generator.datasets")
PREFIX = "/v1/ds"
JSON_LIMIT = 1024 * 1024  # JSON bodies here are small: metadata, a name, an instance id
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the name field, beyond the attachment itself
KEY_PRINCIPAL = Principal(subject="ds-api-key", kind="service", admin=True)
DS = "/v1/ds/{account}/datasets/{group}"
ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/v1/ds/ping", {"GET": "ping"}),
    ("/v1/ds/version", {"GET": "version"}),
    ("/v1/ds/metrics", {"GET": "metrics"}),
    (DS, {"GET": "list_datasets", "POST": "create"}),
    (DS + "/{id}", {"GET": "get", "PUT": "update", "PATCH": "promote", "DELETE": "delete"}),
    (DS + "/{id}/attachments", {"GET": "attachments", "POST": "add_attachment", "DELETE": "delete_attachment"}),
    (DS + "/{id}/instances", {"GET": "instances", "POST": "grant_instance"}),
    (DS + "/{id}/instances/{instance_id}", {"DELETE": "revoke_instance"}),
    (DS + "/{id}/logs", {"GET": "logs"}),
    (DS + "/{id}/users", {"GET": "user", "POST": "create_user", "PUT": "rotate_user_key", "DELETE": "delete_user"}),
]
Reply = tuple[int, bytes, bytes]  # status, body, media type


class TooBig(Exception):
    pass


class DatasetsApp:
    def __init__(self, load: Callable[[], DatasetsConfig], make: Callable[[DatasetsConfig], Datasets],
                 authenticate: Callable[[Scope], Awaitable[Principal]], production: bool) -> None:
        self.authenticate, self.production = authenticate, production
        self.service: Datasets | None = None
        self.missing = ""
        try:
            self.service = make(load())
        except ConfigurationMissing as exc:
            self.missing = str(exc)
            log.warning("/v1/ds answers 503: %s", exc)
        self.templates = [(t.split("/"), methods, t) for t, methods in ROUTES]
        self.registry = CollectorRegistry()
        self.requests = Counter("drg_datasets_requests", "ds-api requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.seconds = Histogram("drg_datasets_request_seconds", "ds-api request duration by route",
                                 ["route"], registry=self.registry)
        self.version_body = {"version": _version(), "githash": os.environ.get("DRG_COMMIT") or None, "buildstamp": None}

    @property
    def config(self) -> DatasetsConfig:
        assert self.service is not None
        return self.service.config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        route = "(unmatched)"
        try:
            route = await self._serve(scope, receive, sending)
        finally:
            self.requests.labels(route, scope["method"], str(status[0])).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> str:
        if self.service is None:
            await send_problem(send, problem(503, "Service Unavailable", self.missing), [(b"retry-after", b"60")])
            return "(unconfigured)"
        try:
            principal = await self._principal(scope)
        except Refused as refused:
            await send_problem(send, refused.body, refused.headers)
            return "(unauthenticated)"
        found = self._match(scope["path"])
        if found is None:
            await send_problem(send, problem(404, "Not Found", "No /v1/ds route serves this path"))
            return "(unmatched)"
        template, methods, params = found
        name_route(scope, template)  # the service-wide request metrics' label: the template, never an id
        name = methods.get(scope["method"])
        allow = ", ".join(sorted(methods)).encode()
        if name is None:
            await send_problem(send, problem(405, "Method Not Allowed", f"{template} allows {allow.decode()}"),
                               [(b"allow", allow)])
            return template
        request = Request(scope, _capped(receive, self._limit(name)))
        try:
            status, body, media = await getattr(self, name)(request, params, principal)
        except Problem as exc:
            await send_problem(send, problem(exc.status, exc.title, exc.detail, **(exc.ext or {})),
                               [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()])
            return template
        except TooBig:
            await send_problem(send, self._too_big(name))
            return template
        except Exception:
            log.exception("%s %s failed", scope["method"], template)
            await send_problem(send, problem(500, "Internal Server Error", "The request failed; see the logs"))
            return template
        await send_bytes(send, status, body, media)
        return template

    # -- plumbing ------------------------------------------------------------------------------------------

    async def _principal(self, scope: Scope) -> Principal:
        key = header(scope, b"x-auth-token")
        if key is not None:
            if header(scope, b"authorization") is not None:
                raise _unauthorized("Send either Authorization or X-Auth-Token, not both")
            digest = hashlib.sha256(key.strip()).hexdigest()
            if self.config.token_sha256 and hmac.compare_digest(digest, self.config.token_sha256):
                return KEY_PRINCIPAL
            raise _unauthorized("The X-Auth-Token key is not known")
        if header(scope, b"authorization") is not None or self.production:
            return await self.authenticate(scope)  # bearer tokens; refuses a production request without any
        return DEVELOPER

    def _match(self, path: str) -> tuple[str, dict[str, str], dict[str, str]] | None:
        parts = path.rstrip("/").split("/") if path != "/" else [""]
        for segments, methods, template in self.templates:
            if len(segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(segments, parts, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return template, methods, params
        return None

    def _limit(self, name: str) -> int:
        return self.config.max_attachment_size + FORM_OVERHEAD if name == "add_attachment" else JSON_LIMIT

    def _too_big(self, name: str) -> dict[str, Any]:
        if name == "add_attachment":
            return problem(400, "Bad Request", f"file too big: attachments may be at most "
                                               f"{self.config.max_attachment_size} bytes")
        return problem(413, "Content Too Large", f"The request body is larger than this route accepts "
                                                 f"({JSON_LIMIT} bytes)", limit=JSON_LIMIT)

    async def _run(self, work: Callable[..., Any], *args: Any) -> Any:
        return await to_thread.run_sync(lambda: work(*args))

    # -- service routes ------------------------------------------------------------------------------------

    async def ping(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return 200, b"pong", b"text/plain; charset=utf-8"

    async def version(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(self.version_body)

    async def metrics(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return 200, generate_latest(self.registry), b"text/plain; version=0.0.4; charset=utf-8"

    # -- datasets ------------------------------------------------------------------------------------------

    async def list_datasets(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        offset = _integer(request, "offset", 0, 0, 2**31)
        limit = _integer(request, "limit", 50, 1, 1000)
        found, total = await self._run(self.service.page, params["account"], params["group"], offset, limit)  # type: ignore[union-attr]
        following = offset + limit
        nxt = f"{request.url.path}?offset={following}&limit={limit}" if following < total else None
        return _json({"datasets": found, "offset": offset, "limit": limit, "total": total, "next": nxt})

    async def create(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        body = await _body(request)
        made = await self._run(self.service.create, params["account"], params["group"], body,  # type: ignore[union-attr]
                               _actor(request, principal))
        return _json(made, 202)

    async def get(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.get, *_ids(params)))  # type: ignore[union-attr]

    async def update(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        body = await _body(request)
        return _json(await self._run(self.service.update, *_ids(params), body,  # type: ignore[union-attr]
                                     _actor(request, principal)))

    async def promote(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.promote, *_ids(params),  # type: ignore[union-attr]
                                     _actor(request, principal)))

    async def delete(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        await self._run(self.service.delete, *_ids(params), _actor(request, principal))  # type: ignore[union-attr]
        return 204, b"", b"text/plain"

    # -- attachments ---------------------------------------------------------------------------------------

    async def add_attachment(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        declared = header(request.scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit("add_attachment"):
            raise TooBig
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise bad_request("Send multipart/form-data with the fields name and attachment")
        try:
            form = await request.form(max_files=1, max_fields=10)
        except TooBig:
            raise
        except Exception as exc:  # python-multipart's and Starlette's parse errors
            raise bad_request(f"The multipart body cannot be read: {exc}") from None
        try:
            upload = form.get("attachment")
            if not isinstance(upload, UploadFile):
                raise bad_request("Send the file as the form field 'attachment'",
                                  [Issue("/attachment", "is required: a file")])
            if (upload.size or 0) > self.config.max_attachment_size:
                raise TooBig
            name = form.get("name") or upload.filename
            await upload.seek(0)
            names = await self._run(self.service.add_attachment, *_ids(params), name,  # type: ignore[union-attr]
                                    upload.file, upload.content_type or "", _actor(request, principal))
        finally:
            await form.close()
        return _json(names)

    async def attachments(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.attachments, *_ids(params)))  # type: ignore[union-attr]

    async def delete_attachment(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        body = await _body(request)
        await self._run(self.service.delete_attachment, *_ids(params), body,  # type: ignore[union-attr]
                        _actor(request, principal))
        return 204, b"", b"text/plain"

    # -- users, instances, logs ----------------------------------------------------------------------------

    async def create_user(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.create_user, *_ids(params),  # type: ignore[union-attr]
                                     _actor(request, principal)))

    async def user(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.user, *_ids(params)))  # type: ignore[union-attr]

    async def rotate_user_key(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.rotate_user_key, *_ids(params),  # type: ignore[union-attr]
                                     _actor(request, principal)))

    async def delete_user(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        await self._run(self.service.delete_user, *_ids(params), _actor(request, principal))  # type: ignore[union-attr]
        return 200, b"", b"text/plain"

    async def instances(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.instances, *_ids(params)))  # type: ignore[union-attr]

    async def grant_instance(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        body = await _body(request)
        return _json(await self._run(self.service.grant_instance, *_ids(params), body,  # type: ignore[union-attr]
                                     _actor(request, principal)))

    async def revoke_instance(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        await self._run(self.service.revoke_instance, *_ids(params), params["instance_id"],  # type: ignore[union-attr]
                        _actor(request, principal))
        return 204, b"", b"text/plain"

    async def logs(self, request: Request, params: dict[str, str], principal: Principal) -> Reply:
        return _json(await self._run(self.service.logs, *_ids(params)))  # type: ignore[union-attr]


def _ids(params: dict[str, str]) -> tuple[str, str, str]:
    return params["account"], params["group"], params["id"]


def _actor(request: Request, principal: Principal) -> str:
    """Who acts: `X-Forwarded-User` (set by the seed's proxy), else the caller's subject."""
    return request.headers.get("x-forwarded-user", "").strip()[:200] or principal.subject


def _json(body: Any, status: int = 200) -> Reply:
    return status, dumps(body), b"application/json"


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"The body is not JSON: {exc}") from None


def _integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bad_request(f"{name} must be an integer from {low} to {high}",
                          [Issue(f"/query/{name}", f"must be an integer from {low} to {high}")])
    return int(raw)


def _capped(receive: Receive, limit: int) -> Receive:
    """Raise TooBig once the body passes `limit` bytes, whatever the request declared."""
    seen = [0]

    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            seen[0] += len(message.get("body", b""))
            if seen[0] > limit:
                raise TooBig
        return message

    return receiving


def _unauthorized(detail: str) -> Refused:
    return Refused(problem(401, "Unauthorized", detail), [(b"www-authenticate", b"Bearer")])


def _version() -> str:
    try:
        return package_metadata.version("data-resource-generator")
    except package_metadata.PackageNotFoundError:
        return "unknown"
