"""A generation's data plane, built once per generation and swapped by reference: the served document, the
route table, and behind each route the endpoint of one operation.

Building is CPU work done in the runtime's builder thread (and, for followers, their follower thread):
plans compile their statements, the grammar and the body validators are made, so a request only runs them.
No framework app is built per generation: the data plane is the route table plus `dataplane.serve`
(see dataplane.py for why), which also makes a generation cheap to build and to retire."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from jsonschema.exceptions import ValidationError
from sqlalchemy import Engine, MetaData

from generator.api.bodies import BodySchemas
from generator.api.endpoints import ResourceEndpoints
from generator.api.execution import Executor
from generator.api.guard import Guard, action_of
from generator.api.openapi import build_document
from generator.api.plans import ResourcePlan
from generator.api.query import Grammar
from generator.api.related import RelatedEndpoints
from generator.api.relations import relations_of
from generator.api.routes import Endpoint, RouteTable
from generator.codec import dumps
from generator.crypto.cipher import FieldCipher
from generator.payload.specs import Generation, OperationSpec


@dataclass(frozen=True)
class ServedApi:
    """What the dispatcher swaps in: the route table and the served document, pre-serialised."""

    generation: Generation
    document: dict[str, Any]
    document_bytes: bytes
    routes: RouteTable
    resources: dict[str, ResourceEndpoints] = field(default_factory=dict)  # by table, for other surfaces
    guard: Guard | None = None


def build_api_app(generation: Generation, metadata: MetaData, engine: Engine, *, default_limit: int,
                  max_limit: int, hooks: pluggy.PluginManager | None = None, auth_required: bool = False,
                  ciphers: Mapping[tuple[str, str], FieldCipher] | None = None) -> ServedApi:
    """The data plane of `generation`. With `hooks`, plugins annotate the document before it is frozen
    (`drg_resource_generated`) and every endpoint is guarded (guard.py); without, nothing is checked (a
    build for inspection, e.g. `drg validate`)."""
    document = build_document(generation, default_limit=default_limit, max_limit=max_limit,
                              auth_required=auth_required)
    if hooks is not None:
        for resource in generation.resources:
            hooks.hook.drg_resource_generated(resource=resource, document=document)
    guard = Guard(hooks, metadata) if hooks is not None else None
    executor = Executor(engine)
    bodies = BodySchemas(document)
    served = {op.resource for op in generation.operations} | {op.related for op in generation.operations
                                                              if op.related}
    plans = {r.name: ResourcePlan(r, metadata.tables[r.name], engine.dialect.name, relations_of(generation, r.name),
                                  {f: c for (t, f), c in (ciphers or {}).items() if t == r.name})
             for r in generation.resources}
    for plan in plans.values():
        plan.peers = plans  # embedded rows are read (and decrypted) by their own table's plan
    resources = {name: _resource(generation, name, plans[name], executor, bodies, document,
                                 default_limit, max_limit) for name in sorted(n for n in served if n)}
    routes: dict[str, dict[str, Endpoint | None]] = {}
    for op in generation.operations:
        endpoint = _endpoint(op, resources, executor, bodies, document)
        if guard is not None:
            endpoint = guard.wrap(endpoint, op.resource, action_of(op.kind), op.related)
        routes.setdefault(op.served_path, {})[op.method] = endpoint
    return ServedApi(generation, document, dumps(document), RouteTable(routes), resources, guard)


def _resource(generation: Generation, name: str, plan: ResourcePlan, executor: Executor,
              bodies: BodySchemas, document: dict[str, Any], default_limit: int, max_limit: int
              ) -> ResourceEndpoints:
    resource = generation.resource(name)
    relations = plan.relations
    grammar = Grammar(resource, default_limit=default_limit, max_limit=max_limit, embeddable=relations)
    single = bodies.validator(document["components"]["schemas"][f"{name}_input"])  # resolved once, not per row
    validators = {
        "create": _by_shape(single),
        "replace": bodies.validator({"$ref": f"#/components/schemas/{name}_replace"}),
        "update": bodies.validator({"$ref": f"#/components/schemas/{name}_patch"}),
        "query": bodies.validator({"type": "object"}),  # the grammar checks names, operators and values
    }
    return ResourceEndpoints(resource, plan, executor, grammar, validators)


def _endpoint(op: OperationSpec, resources: dict[str, ResourceEndpoints], executor: Executor,
              bodies: BodySchemas, document: dict[str, Any]) -> Endpoint:
    parent = resources[op.resource]
    if op.related is None:
        return parent.endpoint(op)
    child = resources[op.related]
    relation = parent.plan.relations[op.related]
    keys = document["paths"][op.served_path][op.method].get("requestBody", {})
    schema = keys.get("content", {}).get("application/json", {}).get("schema", {"type": "array"})
    return RelatedEndpoints(parent, child, relation, executor, bodies.validator(schema)).endpoint(op)


class _by_shape:  # noqa: N801 - a validator, named for what it validates
    """An array body is many rows, an object one: each row is validated against the row schema (compiled
    once), so errors point into the body (a `oneOf` would only say that neither branch matched) and 100,000
    rows do not resolve a `$ref` 100,000 times."""

    def __init__(self, one: Any) -> None:
        self.one = one

    def iter_errors(self, body: Any) -> Iterator[ValidationError]:
        if not isinstance(body, list):
            yield from self.one.iter_errors(body)
            return
        if not body:
            yield ValidationError("an array of rows must hold at least one row", validator="minItems")
        for index, row in enumerate(body):
            for error in self.one.iter_errors(row):
                error.path.appendleft(index)
                yield error
