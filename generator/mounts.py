"""Control-plane systems with route prefixes of their own, found by convention.

Each system is a package (`generator.datasets`, `generator.metadata`, `generator.lifecycle`) with a function
`mount(runtime, settings, authenticator) -> generator.app.Mount`. A package that is absent is skipped, so the
systems land one by one; one that is present but fails to build stops the start, as any other part would."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

SYSTEMS = ("generator.datasets", "generator.metadata", "generator.lifecycle")


def build_mounts(runtime: Any, settings: Any, authenticator: Any) -> list[Any]:
    mounts = []
    for name in SYSTEMS:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        mounts.append(module.mount(runtime, settings, authenticator))
    return mounts
