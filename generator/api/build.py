"""A generation's data-plane app: a fresh Connexion `AsyncApp` per generation, swapped by reference.

`FlaskApp.add_api()` cannot run once an app has served, so each generation gets its own app. AsyncApp
rather than FlaskApp: without the WSGI hop a primary-key GET runs markedly faster (see DESIGN.md and
bench/). The middleware stack is built here, in the caller's worker thread, so the first request after a
swap does not pay for it on the event loop.

Connexion validates the whole document against the OpenAPI schema each time it clones it, once per
middleware: 5 s of a 100-table generation. Our document is generated, not user-written, and the test suite
validates it against the vendored OpenAPI 3.0 schema, so builds skip that step (`trusted_specification`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connexion import AsyncApp
from connexion.apps.abstract import AbstractApp
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from connexion.spec import OpenAPISpecification
from sqlalchemy import Engine, MetaData

from generator.api.handlers import ResourceHandlers
from generator.api.openapi import build_document, operation_id
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
_SPEC_PATCH = threading.Lock()


@contextmanager
def trusted_specification() -> Iterator[None]:
    """Skip Connexion's re-validation of our generated document while an app is built."""
    with _SPEC_PATCH:
        OpenAPISpecification._validate_spec = classmethod(lambda cls, spec: None)  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            del OpenAPISpecification._validate_spec  # the inherited validation is back


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
    return ServedApi(generation, app, document, dumps(document))


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


def prebuild(app: AbstractApp) -> None:
    """Build Connexion's middleware stack now rather than on the first request (on the event loop)."""
    middleware = app.middleware
    middleware.app, middleware.middleware_stack = middleware._build_middleware_stack()
