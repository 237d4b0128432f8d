"""Control-plane systems with route prefixes of their own, found by convention.

Each system is a package (`generator.datasets`, `generator.metadata`, `generator.lifecycle`) with a function
`mount(runtime, settings, authenticator) -> Mount` (import `Mount` from here; `generator.app` re-exports it).
A package that is absent is skipped, so the systems land one by one; one that is present but fails to build
stops the start, as any other part would."""

from __future__ import annotations

import importlib
import importlib.util
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


SYSTEMS = ("generator.datasets", "generator.metadata", "generator.lifecycle")


def build_mounts(runtime: Any, settings: Any, authenticator: Any) -> list[Any]:
    mounts = []
    for name in SYSTEMS:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        mounts.append(module.mount(runtime, settings, authenticator))
    return mounts
