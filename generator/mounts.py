"""Control-plane systems with route prefixes of their own, found by convention.

Each system is a package (`generator.datasets`, `generator.metadata`, `generator.lifecycle`) with a function
`mount(runtime, settings, authenticator) -> Mount` (import `Mount` from here; `generator.app` re-exports it).
A package that is absent is skipped, so the systems land one by one; one that is present but fails to build
stops the start, as any other part would."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mount:
    """A control-plane system with routes of its own under `prefix` (datasets, the metadata graph, the
    lifecycle engine): its package builds `app` (any ASGI app). The dispatcher authenticates requests first
    (the principal is in `scope[PRINCIPAL_KEY]`, production refuses anonymous callers) unless the system
    `authenticates_itself` (a client contract with its own credentials, such as ds-api's pre-shared key)."""

    prefix: str
    app: Any
    authenticates_itself: bool = False
    # Paths outside `prefix` the system also serves, as (first path segment, a function giving the path under
    # `prefix`, or None when it is not one of them): the lifecycle engine's /data-products/{name}/versions.
    alias: tuple[str, Callable[[str], str | None]] | None = None
    # How the system words a refused authentication (its clients' error format): (problem, path) -> (body,
    # media type). None: problem+json, as everywhere else.
    refusal: Callable[[dict[str, Any], str], tuple[bytes, bytes]] | None = None

    @property
    def roots(self) -> tuple[str, ...]:
        return (self.prefix.split("/", 2)[1],) + ((self.alias[0],) if self.alias else ())

    def claims(self, path: str) -> str | None:
        """The path this system serves `path` under (itself, or its alias's target), or None."""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path
        return self.alias[1](path) if self.alias is not None else None


SYSTEMS = ("generator.datasets", "generator.metadata", "generator.lifecycle")


def build_mounts(runtime: Any, settings: Any, authenticator: Any) -> list[Any]:
    mounts = []
    for name in SYSTEMS:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        mounts.append(module.mount(runtime, settings, authenticator))
    return mounts
