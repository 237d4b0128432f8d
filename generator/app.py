"""Layer 4: `create_app()` and the root ASGI dispatcher.

    HTTP ─► Dispatcher ─┬─ admin app (fixed FlaskApp: /generator, /tableschema, /swagger, /health, /admin/ui)
                        ├─ /openapi.json: the current generation's document, cached bytes
                        ├─ /ui: Swagger UI, one app for every generation (it loads /openapi.json)
                        └─ the current generation's AsyncApp, swapped by reference on each generation

Requests in flight finish on the app that accepted them: the dispatcher reads `runtime.current` once per
request. In production every route needs a bearer token from AUTH_TOKENS (full identity, JWTs and team
policies are the data-products issue); development mode is open and says so loudly at start-up."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from typing import Any

from connexion import FlaskApp
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from generator.admin.handlers import AdminHandlers
from generator.api.build import prebuild
from generator.api.docs import build_docs_app
from generator.api.validation import VALIDATORS
from generator.codec import dumps
from generator.config import REPO_ROOT, Settings
from generator.errors import StartupError
from generator.hooks import create_plugin_manager
from generator.models.engine import create_database_engine
from generator.runtime import Runtime
from generator.storage import create_store

log = logging.getLogger("generator")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
ADMIN_ROOTS = frozenset({"generator", "tableschema", "swagger", "health", "admin"})
OPEN_WARNING = (
    "DEVELOPMENT MODE: every route, /generator included, is open to anyone who can reach this port. "
    "Set APP_ENV=production and AUTH_TOKENS to require authentication."
)


class Dispatcher:
    """The root ASGI app: picks the admin app or the current generation for each request."""

    def __init__(self, runtime: Runtime, admin: FlaskApp, settings: Settings) -> None:
        self.runtime, self.admin, self.settings = runtime, admin, settings
        self.docs = build_docs_app()
        self._token_digests = [hashlib.sha256(t.strip().encode()).digest() for t in settings.auth_tokens]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self._token_digests and not self._authorised(scope):
            await _send_problem(send, 401, {"type": "about:blank", "title": "Unauthorized", "status": 401,
                                         "detail": "This service requires 'Authorization: Bearer <token>'"},
                             extra_headers=[(b"www-authenticate", b"Bearer")])
            return
        path: str = scope["path"]
        if CONTROL_CHARACTERS.search(path) or b"%00" in scope.get("query_string", b""):
            # No route has them, and the admin app's two routers (Starlette's, then Flask's) disagree on them.
            await _send_problem(send, 400, {"type": "about:blank", "title": "Bad Request", "status": 400,
                                            "detail": "URLs must not contain control characters"})
            return
        current = self.runtime.current
        if path == "/openapi.json":
            await _send_bytes(send, 200, current.document_bytes, b"application/json")
        elif path == "/ui" or path.startswith("/ui/"):
            await self.docs(scope, receive, send)
        elif path.split("/", 2)[1] in ADMIN_ROOTS:
            await self.admin(scope, receive, send)
        else:
            await current.app(scope, receive, send)

    def _authorised(self, scope: Scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        presented = hashlib.sha256(token.strip().encode()).digest()
        return any(hmac.compare_digest(presented, known) for known in self._token_digests)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        poller: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.settings.poll_seconds > 0:
                    poller = asyncio.create_task(self._follow_generations())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if poller is not None:
                    poller.cancel()
                self.runtime.engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _follow_generations(self) -> None:
        """Swap in generations recorded by other workers or replicas on the same database."""
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await run_in_threadpool(self.runtime.refresh)
            except Exception:  # a database blip must not stop the follower; the next round retries
                log.exception("Could not check for a newer generation")


async def _send_bytes(send: Send, status: int, body: bytes, media_type: bytes,
                      extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, status: int, body: dict[str, Any],
                     extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send_bytes(send, status, dumps(body), b"application/problem+json", extra_headers)


def build_admin_app(handlers: AdminHandlers) -> FlaskApp:
    admin = FlaskApp(__name__)
    admin.add_api(
        REPO_ROOT / "schemas" / "admin.yaml",
        resolver=Resolver(function_resolver=lambda operation_id: getattr(handlers, operation_id)),
        strict_validation=True,
        validator_map=VALIDATORS,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/admin/ui", spec_path="/admin/openapi.json"),
    )
    prebuild(admin)
    return admin


def create_app(settings: Settings | None = None) -> Dispatcher:
    """Build the service: engine, payload store, hooks, the last generation (if any), the admin app."""
    settings = settings or Settings.from_env()
    if settings.production and not settings.auth_tokens:
        raise StartupError("APP_ENV=production requires AUTH_TOKENS (comma-separated bearer tokens); "
                           "refusing to start an unauthenticated production service")
    engine = create_database_engine(settings.database_url)
    try:
        runtime = Runtime(settings, engine, create_store(settings), create_plugin_manager())
        runtime.boot()
    except BaseException:
        engine.dispose()  # a refused start leaves no connection behind
        raise
    if not settings.production:
        log.warning(OPEN_WARNING)
    return Dispatcher(runtime, build_admin_app(AdminHandlers(runtime, settings)), settings)
