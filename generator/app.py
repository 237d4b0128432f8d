"""Layer 4: `create_app()` and the root ASGI dispatcher.

    HTTP ─► Dispatcher ─┬─ admin app (fixed FlaskApp: /generator, /tableschema, /swagger, /health, /admin/ui)
                        ├─ control-plane mounts: /v1/ds, /openapi (the metadata graph), the lifecycle engine
                        ├─ /openapi.json: the current generation's document, cached bytes
                        ├─ /ready, /version, /metrics: generator/operations (which also wraps every request)
                        ├─ /ui: Swagger UI, one app for every generation (it loads /openapi.json)
                        └─ the current generation's data plane (route table → endpoints), swapped by reference

Requests in flight finish on the app that accepted them: the dispatcher reads `runtime.current` once per
request. Every request is authenticated first (`generator.identity.authenticate`): the `Principal` goes into the
scope; in production a request without credentials gets 401 on every route (the probes `/health` and `/ready`
are opened by PUBLIC_PROBES=true, `/metrics` and `/version` by PUBLIC_METRICS=true), and development mode is open
(requests without credentials act as the developer) and says so loudly at start-up."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

from connexion import FlaskApp
from connexion.middleware import ConnexionMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.types import Receive, Scope, Send

from generator.admin.handlers import AdminHandlers
from generator.api.build import ServedApi
from generator.api.connexion_compat import prebuild
from generator.api.dataplane import serve
from generator.api.docs import build_docs_app
from generator.api.postgrest import serve_rest
from generator.api.validation import VALIDATORS
from generator.asgi import (
    Headers,
    buffer_chunked,
    declared_length,
    header,
    problem,
    refuse_websocket,
    relative_redirects,
    send_bytes,
    send_problem,
    too_large,
)
from generator.config import REPO_ROOT, Settings
from generator.errors import Problem
from generator.hooks import create_plugin_manager
from generator.identity import PRINCIPAL_KEY
from generator.identity.authenticate import Authenticator, Refused
from generator.identity.principal import ANONYMOUS
from generator.models.engine import create_database_engine
from generator.mounts import SYSTEMS, Mount, build_mounts
from generator.operations import Operations, name_route
from generator.policies.data_products import DataProductPolicy
from generator.products import ROOTS as PRODUCT_ROOTS
from generator.products import catalog, lookup_team_key
from generator.products.handlers import ProductHandlers
from generator.runtime import Runtime
from generator.storage import create_store

log = logging.getLogger("generator")
ADMIN_DOCUMENT = {"url": "/admin/openapi.json", "name": "Admin API"}
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
SERVER_ALLOW = b"DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
ADMIN_ROOTS = frozenset({"generator", "tableschema", "swagger", "health", "admin"}) | PRODUCT_ROOTS - {"teams"}
OPEN_WARNING = (
    "DEVELOPMENT MODE: every route, /generator included, is open to anyone who can reach this port. "
    "Set APP_ENV=production and AUTH_TOKENS, JWT_JWKS_URL (or JWT_JWKS_FILE) or JWT_SECRET to require "
    "authentication."
)


class Dispatcher:
    """The root ASGI app: checks what every request may ask, then picks the admin app or the current
    generation. Data-plane requests are routed here first (`ServedApi.routes`), so 404, 405 (with an exact
    `Allow`) and OPTIONS never reach Connexion."""

    def __init__(self, runtime: Runtime, admin: FlaskApp, settings: Settings,
                 authenticator: Authenticator | None = None, operations: Operations | None = None,
                 mounts: Iterable[Mount] = ()) -> None:
        self.runtime, self.admin, self.settings = runtime, admin, settings
        self.mounts = tuple(mounts)
        self.mount_roots = frozenset(root for m in self.mounts for root in m.roots)
        self.docs = build_docs_app()
        self.authenticator = authenticator or Authenticator.from_settings(settings)
        # Request ids, JSON logs, metrics, /ready, /version, /metrics: generator/operations/README.md
        self.operations = operations or Operations(
            runtime, ADMIN_ROOTS | {"ui", "openapi.json", "teams", settings.rest_prefix.strip("/")})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.operations.observe(self._http, scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await refuse_websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        mount = self._mount(scope) if self.mount_roots else None
        if mount is not None and mount.authenticates_itself:
            await mount.app(scope, receive, send)
            return
        try:
            scope[PRINCIPAL_KEY] = await self.authenticator.authenticate(scope)
        except Refused as refused:
            if mount is not None and mount.refusal is not None:  # in the format its clients read
                body, media_type = mount.refusal(refused.body, scope["path"])
                await send_bytes(send, refused.body["status"], body, media_type, refused.headers)
                return
            if not self.operations.opens(scope):  # /health and /ready with PUBLIC_PROBES=true
                await send_problem(send, refused.body, refused.headers)
                return
            scope[PRINCIPAL_KEY] = ANONYMOUS
        path: str = scope["path"]
        if scope["method"] == "OPTIONS" and path == "*":  # the asterisk form asks about the server itself
            await send_bytes(send, 204, b"", b"text/plain", [(b"allow", SERVER_ALLOW)])
            return
        refusal = self._refusal(scope, path)
        if refusal is not None:
            await send_problem(send, *refusal)
            return
        if _has_body(scope) and declared_length(scope) is None:
            limit = self._body_limit(path)
            buffered = await buffer_chunked(scope, receive, limit)
            if buffered is None:
                await send_problem(send, too_large(limit))
                return
            scope, receive = buffered
        current = self.runtime.current
        root = path.split("/", 2)[1]
        if path == "/openapi.json":
            await send_bytes(send, 200, current.document_bytes, b"application/json")
        elif path in self.operations.paths:
            await self.operations.serve(scope, receive, send)
        elif root == "ui":
            await self.docs(scope, receive, relative_redirects(scope, send))
        elif mount is not None:
            await mount.app(scope, receive, send)
        elif root in ADMIN_ROOTS or _team_credentials(path):
            await self.admin(scope, receive, relative_redirects(scope, send))
        elif root == self.settings.rest_prefix.strip("/"):
            await serve_rest(current, scope, receive, send, self.settings.rest_prefix)
        else:
            await self._data_plane(current, scope, receive, send)

    def _mount(self, scope: Scope) -> Mount | None:
        """The control-plane system serving this path (`/v1/ds/...`, ...): a whole prefix, so a generated
        table that shares the first segment keeps its own routes. An alias path is rewritten to the system's."""
        path: str = scope["path"]
        if path[:1] != "/" or path.split("/", 2)[1] not in self.mount_roots:  # `*` (OPTIONS *) has no segments
            return None
        for mount in self.mounts:
            served = mount.claims(path)
            if served is not None:
                if served != path:
                    scope["path"], scope["raw_path"] = served, served.encode()
                return mount
        return None

    def _refusal(self, scope: Scope, path: str) -> tuple[dict[str, Any], Headers] | None:
        """A problem for a request no route may take, judged on what it declares before anything is read."""
        if not path.startswith("/"):
            return problem(400, "Bad Request", "The request target must be a path; '*' only goes with OPTIONS"), []
        query: bytes = scope.get("query_string", b"")
        if CONTROL_CHARACTERS.search(path) or b"%00" in query:
            # No route has them, and the admin app's two routers (Starlette's, then Flask's) disagree on them.
            return problem(400, "Bad Request", "URLs must not contain control characters"), []
        if query and query.count(b"&") + 1 > self.settings.max_query_parameters:
            limit = self.settings.max_query_parameters
            return problem(400, "Bad Request", f"A request may carry at most {limit} query parameters",
                           errors=[{"pointer": "/query", "message": f"more than {limit} parameters"}]), []
        length = declared_length(scope)
        if length is not None and length > (limit := self._body_limit(path)):
            return too_large(limit), []
        return None

    def _body_limit(self, path: str) -> int:
        if path == "/generator" or path.startswith("/generator/"):
            return self.settings.max_generation_bytes
        return self.settings.max_body_bytes

    async def _data_plane(self, current: ServedApi, scope: Scope, receive: Receive, send: Send) -> None:
        found = current.routes.match(scope["path"])
        method = scope["method"]
        if found is None:
            await send_problem(send, problem(404, "Not Found", "No route of the current generation serves this "
                                                               "path; see /openapi.json"))
            return
        route, params = found
        name_route(scope, route.template)
        endpoint = route.endpoint(method)
        if method == "OPTIONS":
            await send_bytes(send, 204, b"", b"text/plain", [(b"allow", route.allow.encode())])
        elif endpoint is None:
            await send_problem(send, problem(405, "Method Not Allowed", f"{method} is not an operation of "
                                                                        f"{route.template}; it allows {route.allow}"),
                               [(b"allow", route.allow.encode())])
        else:
            await serve(endpoint, params, scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.runtime.follow()
                self.operations.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.operations.close()
                self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _team_credentials(path: str) -> bool:
    """`/teams/{team}/credentials[/{key_id}]` are the admin app's; the rest of `/teams` stays free for a
    generated table (reference payloads name one `teams`)."""
    parts = path.split("/")
    return len(parts) in (4, 5) and parts[1] == "teams" and parts[3] == "credentials"


def _has_body(scope: Scope) -> bool:
    return header(scope, b"transfer-encoding") is not None


def system_documents() -> list[dict[str, str]]:
    """The OpenAPI documents of the mounted control-plane systems: a system package that serves one names it
    as `DOCUMENT = (title, url)` (the metadata graph: `/openapi/v3/api-docs`). Read from the packages
    `build_mounts` imported, so an absent system adds nothing."""
    found = []
    for name in SYSTEMS:
        document = getattr(sys.modules.get(name), "DOCUMENT", None)
        if document is not None:
            title, url = document
            found.append({"url": url, "name": title})
    return found


def build_admin_app(handlers: AdminHandlers, products: ProductHandlers | None = None,
                    documents: Iterable[dict[str, str]] = ()) -> FlaskApp:
    """The admin app; operationIds `products.<name>` resolve to the data-product handlers. Its Swagger UI at
    /admin/ui offers the admin document and `documents` (Swagger UI's `urls`: a definition selector in the
    top bar), so one page shows the whole control plane."""
    namespaces: dict[str, object] = {"": handlers, "products": products}

    def resolve(operation_id: str) -> Any:
        namespace, _, name = operation_id.rpartition(".")
        return getattr(namespaces[namespace], name)

    # The dispatcher authenticates every request; Connexion's own security layer would refuse them all, as
    # admin.yaml declares schemes without Connexion info functions.
    admin = FlaskApp(__name__, middlewares=[m for m in ConnexionMiddleware.default_middlewares
                                            if m is not SecurityMiddleware])
    admin.add_api(
        REPO_ROOT / "schemas" / "admin.yaml",
        resolver=Resolver(function_resolver=resolve),
        strict_validation=True,
        validator_map=VALIDATORS,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/admin/ui", spec_path=ADMIN_DOCUMENT["url"],
                                            swagger_ui_template_arguments={"urls": [ADMIN_DOCUMENT, *documents]}),
    )
    prebuild(admin)
    return admin


def create_app(settings: Settings | None = None, plugins: Iterable[object] = ()) -> Dispatcher:
    """Build the service: engine, payload store, hooks, the last generation (if any), the admin app."""
    settings = settings or Settings.from_env()
    # Team API keys come from the products package; `engine` is bound below, before any request arrives.
    authenticator = Authenticator.from_settings(  # refuses a start without auth
        settings, team_key_lookup=lambda raw_key: lookup_team_key(engine, raw_key))
    Problem.max_errors = settings.max_error_items
    engine = create_database_engine(settings)  # DATABASE_URL, or AWS Secrets Manager / RDS IAM (generator/aws)
    try:
        policy = DataProductPolicy(lambda: catalog(engine))  # our own policy, a default plugin
        runtime = Runtime(settings, engine, create_store(settings), create_plugin_manager(plugins, defaults=[policy]))
        runtime.boot()
    except BaseException:
        engine.dispose()  # a refused start leaves no connection behind
        raise
    if not settings.production:
        log.warning(OPEN_WARNING)
    mounts = build_mounts(runtime, settings, authenticator)
    admin = build_admin_app(AdminHandlers(runtime, settings), ProductHandlers(runtime), system_documents())
    return Dispatcher(runtime, admin, settings, authenticator, mounts=mounts)
