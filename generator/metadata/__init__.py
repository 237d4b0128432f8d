"""The metadata graph (issue 16): entities, versioned aspects, relationships and the timeline, under
`/openapi` in DataHub's OpenAPI shapes; the generator publishes its datasets into it (`publish_generation`).
See README.md."""

from __future__ import annotations

from typing import Any

from generator.metadata.publish import dataset_urns, options, publish_generation
from generator.mounts import Mount

PREFIX = "/openapi"
DOCUMENT = ("Metadata graph", f"{PREFIX}/v3/api-docs")  # offered by the admin Swagger UI (/admin/ui) too

__all__ = ["DOCUMENT", "PREFIX", "dataset_urns", "mount", "publish_generation"]


def mount(runtime: Any, settings: Any, authenticator: Any) -> Mount:
    """The `/openapi` system for the dispatcher: tables created if missing, then the routes."""
    from generator.metadata.access import Rules
    from generator.metadata.routes import MetadataRoutes
    from generator.metadata.tables import ensure_tables
    from generator.products import catalog

    engine = runtime.engine
    ensure_tables(engine)
    platform, env = options(settings)
    rules = Rules(lambda: catalog(engine), platform, env)
    return Mount(PREFIX, MetadataRoutes(engine, rules).app())
