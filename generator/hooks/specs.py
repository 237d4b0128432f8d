"""Hook specifications: one documented function per hook. Implement them with `@hookimpl`."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("drg")


@hookspec
def drg_resource_generated(resource: Any, document: dict[str, Any]) -> None:
    """A resource's routes are about to be served. `resource` is its `ResourceSpec`; `document` the served
    OpenAPI document, which plugins may annotate (e.g. attach access policies). Return nothing."""


@hookspec
def drg_generation_applied(generation: Any, created_tables: list[str]) -> None:
    """A generation was committed and swapped in. `created_tables` lists the tables this one created."""
