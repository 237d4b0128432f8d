"""The metadata graph (issue 16): entities, versioned aspects, relationships and the timeline, under
`/openapi` in DataHub's OpenAPI shapes; the generator publishes its datasets into it (`publish_generation`).
See README.md."""

from __future__ import annotations

from typing import Any

from generator.hooks import hookimpl
from generator.metadata.publish import dataset_urns, options, publish_generation
from generator.mounts import Mount

PREFIX = "/openapi"
DOCUMENT = ("Metadata graph", f"{PREFIX}/v3/api-docs")  # offered by the admin Swagger UI (/admin/ui) too

__all__ = ["DOCUMENT", "PREFIX", "dataset_urns", "mount", "publish_generation"]


class Publisher:
    """The plugin that publishes each generation's datasets in the generation's own transaction, whoever
    applies it (`POST /generator`, a lifecycle task): all of it commits, or none."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    @hookimpl
    def drg_generation_recording(self, connection: Any, generation: Any, principal: Any) -> None:
        publish_generation(connection, generation, principal, self.settings)


def mount(runtime: Any, settings: Any, authenticator: Any) -> Mount:
    """The `/openapi` system for the dispatcher: tables created if missing, then the routes."""
    from generator.metadata.access import Rules
    from generator.metadata.routes import MetadataRoutes
    from generator.metadata.tables import ensure_tables
    from generator.products import catalog

    engine = runtime.engine
    ensure_tables(engine)
    runtime.hooks.register(Publisher(settings))  # every generation applied here publishes its datasets
    platform, env = options(settings)
    rules = Rules(lambda: catalog(engine), platform, env)
    return Mount(PREFIX, MetadataRoutes(engine, rules).app())
