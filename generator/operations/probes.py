"""The operations routes the dispatcher hands over: `/ready`, `/version`, `/metrics` (GET and HEAD).

* `/ready`: 200 once the database answers `SELECT 1` (within `READY_TIMEOUT_SECONDS`, in a worker thread)
  and a generation (possibly the empty one) is being served; otherwise a 503 problem listing the checks.
  The answer is reused for a second, so many probes cost the database one query a second per process.
* `/version`: the service's version, the commit it was built from (`DRG_COMMIT`, set by the image build),
  Python's version, and the generation being served.
* `/metrics`: the Prometheus exposition text (metrics.py). An administrator's credentials in production,
  unless `PUBLIC_METRICS=true` (see README.md for why).

`/health` (liveness) stays the admin app's route; like `/ready` it needs no credentials in any mode."""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from time import monotonic
from typing import Any

import anyio
from anyio import to_thread
from sqlalchemy import Engine
from starlette.types import Message, Receive, Scope, Send

from generator.asgi import problem, send_bytes, send_problem
from generator.codec import dumps
from generator.identity.principal import principal_of
from generator.operations.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("generator.operations")
ALLOW = b"GET, HEAD, OPTIONS"
READY_CACHE_SECONDS = 1.0
SERVICE = "data-resource-generator"


@dataclass(frozen=True)
class Served:
    """What the probes read of the runtime: its engine and the generation it serves (a callable, as the
    runtime swaps it)."""

    engine: Engine
    generation: Callable[[], Any]


class Probes:
    PATHS = frozenset({"/ready", "/version", "/metrics"})

    def __init__(self, served: Served, metrics: Metrics, *, public_metrics: bool, ready_timeout: float,
                 commit: str = "") -> None:
        self.served, self.metrics = served, metrics
        self.public_metrics, self.ready_timeout = public_metrics, ready_timeout
        self.version = {"service": SERVICE, "version": _installed_version(), "commit": commit or None,
                        "python": platform.python_version()}
        self._ready: tuple[float, int, dict[str, Any]] | None = None
        self._checking: anyio.Lock | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS":
            await send_bytes(send, 204, b"", b"text/plain", [(b"allow", ALLOW)])
            return
        if method not in ("GET", "HEAD"):
            await send_problem(send, problem(405, "Method Not Allowed", f"{path} allows {ALLOW.decode()}"),
                               [(b"allow", ALLOW)])
            return
        status, body, media_type = await self._answer(scope, path)
        await send_bytes(send if method == "GET" else _head_only(send), status, body, media_type)

    async def _answer(self, scope: Scope, path: str) -> tuple[int, bytes, bytes]:
        if path == "/metrics":
            if not (self.public_metrics or principal_of(scope).admin):
                body = problem(403, "Forbidden", "Metrics are for administrators (a service token or an "
                                                 "administrator's token) unless PUBLIC_METRICS=true")
                return 403, dumps(body), b"application/problem+json"
            return 200, await to_thread.run_sync(self.metrics.render), CONTENT_TYPE
        if path == "/version":
            return 200, dumps({**self.version, "generation": _generation(self.served.generation())}), \
                b"application/json"
        status, body = await self.ready()
        return status, dumps(body), b"application/json" if status == 200 else b"application/problem+json"

    async def ready(self) -> tuple[int, dict[str, Any]]:
        """(status, body) of the readiness check, reused for READY_CACHE_SECONDS."""
        if self._checking is None:
            self._checking = anyio.Lock()
        async with self._checking:
            cached = self._ready
            if cached is not None and monotonic() - cached[0] < READY_CACHE_SECONDS:
                return cached[1], cached[2]
            database = await self._database()
            generation = self.served.generation()
            checks = {"database": database, "generation": "ok" if generation is not None else "not loaded"}
            body: dict[str, Any] = {"status": "ready", "checks": checks, "generation": _generation(generation)}
            status = 200
            if any(value != "ok" for value in checks.values()):
                status = 503
                failed = ", ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
                body = {**problem(503, "Service Unavailable", f"Not ready ({failed})"), **body,
                        "status": "not ready"}
            self._ready = (monotonic(), status, body)
            return status, body

    async def _database(self) -> str:
        try:
            with anyio.fail_after(self.ready_timeout):
                await to_thread.run_sync(self._ping, abandon_on_cancel=True)
        except TimeoutError:
            return f"no answer within {self.ready_timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; its class says which
            log.warning("Readiness: the database did not answer: %s", type(exc).__name__)
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    def _ping(self) -> None:
        with self.served.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")


def _head_only(send: Send) -> Send:
    """HEAD: the headers GET would send (Content-Length included), no body."""

    async def sending(message: Message) -> None:
        await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

    return sending


def _generation(generation: Any) -> dict[str, Any] | None:
    if generation is None:
        return None
    return {"digest": generation.digest or None, "title": generation.title, "version": generation.version}


def _installed_version() -> str:
    try:
        return metadata.version(SERVICE)
    except metadata.PackageNotFoundError:
        return "unknown"
