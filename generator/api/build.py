"""A generation's data-plane app: a fresh Connexion `AsyncApp` per generation, swapped by reference.

`FlaskApp.add_api()` cannot run once an app has served, so each generation gets its own app. AsyncApp
rather than FlaskApp: without the WSGI hop a primary-key GET runs markedly faster (see DESIGN.md and
bench/). The middleware stack is built here, in the caller's worker thread, so the first request after a
swap does not pay for it on the event loop.

What Connexion's private API does for us lives in `connexion_compat`. Each served app carries its route
table (`routes`), so the dispatcher answers 404, 405 and OPTIONS itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connexion import AsyncApp
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from sqlalchemy import Engine, MetaData

from generator.api.connexion_compat import prebuild, trusted_specification
from generator.api.handlers import ResourceHandlers
from generator.api.openapi import build_document, operation_id
from generator.api.routes import RouteTable
from generator.api.validation import VALIDATORS
from generator.codec import dumps
from generator.payload.specs import Generation


@dataclass(frozen=True)
class ServedApi:
    """What the dispatcher swaps in: the ASGI app and the served document, pre-serialised."""

    generation: Generation
    app: AsyncApp
    document: dict[str, Any]
    document_bytes: bytes
    routes: RouteTable


# Connexion's default stack minus what the data plane does elsewhere: authentication happens in the
# dispatcher, lifespan too, Swagger UI is one app for every generation (api/docs.py), and responses are
# not validated. Each middleware left out is one less layer on every request.
DATA_PLANE_MIDDLEWARES = [
    ServerErrorMiddleware,
    ExceptionMiddleware,
    RoutingMiddleware,
    RequestValidationMiddleware,
    ContextMiddleware,
]
def build_api_app(generation: Generation, metadata: MetaData, engine: Engine, *, default_limit: int,
                  max_limit: int) -> ServedApi:
    document = build_document(generation, default_limit=default_limit, max_limit=max_limit)
    handlers = {
        r.name: ResourceHandlers(r, metadata.tables[r.name], engine)
        for r in generation.resources
        if generation.operations_for(r.name)
    }
    functions = {operation_id(op): handlers[op.resource].function(op) for op in generation.operations}
    app = AsyncApp(__name__, middlewares=DATA_PLANE_MIDDLEWARES)
    with trusted_specification():
        _add_api(app, document, functions)
    routes = RouteTable((path, item.keys()) for path, item in document["paths"].items())
    return ServedApi(generation, app, document, dumps(document), routes)


def _add_api(app: AsyncApp, document: dict[str, Any], functions: dict[str, Any]) -> None:
    app.add_api(
        document,
        resolver=Resolver(function_resolver=functions.__getitem__),
        strict_validation=True,
        validate_responses=False,
        validator_map=VALIDATORS,
        swagger_ui_options=SwaggerUIOptions(serve_spec=False, swagger_ui=False),
    )
    prebuild(app)
