"""Every use of Connexion's private API, in one place (Connexion is pinned below 4).

Two internals make generation fast enough to run per payload:
- `OpenAPISpecification._validate_spec`: Connexion validates the whole document against the OpenAPI schema
  each time it clones it, once per middleware (5 s of a 100-table generation). Our document is generated,
  and the test suite validates it against the vendored OpenAPI 3.0 schema, so builds skip that step.
- `ConnexionMiddleware._build_middleware_stack()`: the stack is otherwise built lazily on the first request,
  on the event loop (0.2-0.6 s); building it in the builder thread keeps swaps invisible to clients.

tests/test_connexion_compat.py fails when a Connexion release changes either, before a user notices."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from connexion.apps.abstract import AbstractApp
from connexion.spec import OpenAPISpecification

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


def prebuild(app: AbstractApp) -> None:
    """Build Connexion's middleware stack now rather than on the first request (on the event loop)."""
    middleware = app.middleware
    middleware.app, middleware.middleware_stack = middleware._build_middleware_stack()
