"""Hook specifications: one documented function per hook. Implement them with `@hookimpl` (generator.hooks).

Hooks are called with keyword arguments only. Single-answer hooks are `firstresult`: the first plugin that
returns something other than None decides; our own data-product policy is a default plugin registered like
any third party's, so a plugin registered before it (as `create_app(plugins=...)` does) can decide first."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("drg")


@hookspec
def drg_resource_generated(resource: Any, document: dict[str, Any]) -> None:
    """A resource's routes are about to be served, and its served OpenAPI `document` is not frozen yet:
    plugins may annotate it (attach policies, owners, `x-` extensions), and what they add is served.
    `resource` is its `ResourceSpec`. Called on every process that builds the generation (followers too)."""


@hookspec
def drg_generation_applied(generation: Any, created_tables: list[str]) -> None:
    """A generation was swapped in by this process: one it committed (`created_tables` lists the tables it
    created), or one another process committed and this one adopted (`created_tables` is empty)."""


@hookspec
def drg_generation_recording(connection: Any, generation: Any, principal: Any) -> None:
    """A generation is being applied by this process: its DDL has run and it is recorded, and `connection`
    is its transaction, not committed yet. Write what belongs with the generation on that connection (the
    metadata graph publishes its datasets here); raising rolls the whole generation back. `principal` is who
    posted it (a `generator.identity.Principal`). Not called where a generation is adopted."""


@hookspec(firstresult=True)
def drg_authorize(principal: Any, resource: str, action: str) -> Any:
    """May `principal` (a `generator.identity.Principal`) do `action` ("read" or "write") on the generated
    `resource` (a table name)? Return a `generator.hooks.Decision` (allow or deny, with a reason), or None
    to leave the decision to the next plugin. When no plugin decides, the request is allowed only for
    administrators (and the developer in development mode)."""


@hookspec
def drg_row_filter(principal: Any, resource: str, table: Any) -> Any:
    """A SQLAlchemy condition over `table` (the resource's `Table`) limiting the rows `principal` may see and
    change, or None for no limit. Every plugin's condition applies (they are ANDed), on every route family:
    lists, reads, queries, counts, embeds (for the related table), many-to-many lists, CSV, the PostgREST
    surface, and the UPDATE/DELETE of writes."""


@hookspec(firstresult=True)
def drg_check_write(principal: Any, resource: str, values: dict[str, Any]) -> Any:
    """May `principal` write a row with these column `values` into `resource` (a create, or the new values
    of a replace or update)? Return a `Decision`, or None. Used to keep writers inside their organisations
    and tenants: a row filter stops them reaching rows outside, this stops them creating or moving rows
    there."""


@hookspec(firstresult=True)
def drg_policy_document(product: Any, team: str, serving: Any) -> Any:
    """The access policy (e.g. an IAM policy document as a dict) that grants `team` the `serving` of
    `product`, for servings outside the API (S3, Kafka ...). None: no policy from this plugin."""


@hookspec
def drg_audit_event(event: dict[str, Any]) -> None:
    """Something changed: `event` has `actor`, `action`, `target`, `before`, `after`, `at`. Plugins may
    forward it (a SIEM, a log stream); the platform's own audit table records it regardless."""


@hookspec
def drg_lifecycle_executors(settings: Any, runtime: Any) -> dict[str, Any] | None:
    """Executors this plugin provides to the lifecycle engine, by the name tasks give as `executorRef`:
    objects with `run(order: TaskOrder, secrets: Mapping[str, str]) -> TaskResult | None`
    (`generator.lifecycle.executors`), called in a worker thread; None means the executor calls back
    (`PATCH /tasks/{id}/status?action=STOP`). A name also configured in EXECUTORS_CONFIG stops the start."""
