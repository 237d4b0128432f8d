"""What the generator publishes, in the transaction of each generation (`publish_generation`, called from
the admin `generate` handler's `in_transaction` callback after the ownership is recorded):

- a `dataset` per generated table (many-to-many tables included), URN
  `urn:li:dataset:(urn:li:dataPlatform:<platform>,<table>,<ENV>)`, with `schemaMetadata` (fields, their types,
  primary and foreign keys, protected and searchable flags; never row values or keys) written by the
  generator (read-only to users) and `ownership` by the owning team (`urn:li:corpGroup:<team>`);
- on each owning data product (`urn:li:dataProduct:<name>`), `dataProductProperties.assets` listing its
  datasets, hence a `Contains` relationship OUTGOING from the product;
- datasets of tables a generation dropped are soft-deleted (`status.removed`), and come back if re-added.

An aspect is written only when its value changes: regenerating an identical table adds no version. Users'
own owners and assets are kept beside the generator's (those carry `source.url = <platform URN>`).

Platform and environment: settings `metadata_platform` / `metadata_env` if present, else the environment
variables METADATA_PLATFORM (default `drg`) and METADATA_ENV (default `PROD`)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sqlalchemy import Connection, select

from generator.codec import dumps_text
from generator.identity import Principal
from generator.metadata import store
from generator.metadata.store import AspectRecord
from generator.metadata.tables import aspects, relationships
from generator.metadata.urns import dataset_urn, field_urn, parse_urn, product_urn, team_urn, user_urn
from generator.models.tables import association_columns
from generator.payload.specs import FieldSpec, Generation
from generator.products.tables import products, resource_owners

DATAHUB_TYPES = {
    "string": "StringType", "integer": "NumberType", "number": "NumberType", "year": "NumberType",
    "boolean": "BooleanType", "date": "DateType", "datetime": "DateType", "yearmonth": "DateType",
    "time": "TimeType", "duration": "StringType", "object": "RecordType", "geojson": "RecordType",
    "geopoint": "RecordType", "array": "ArrayType", "any": "NullType",
}  # fmt: skip


def options(settings: Any = None) -> tuple[str, str]:
    """(platform, environment) of the generator's datasets."""
    platform = getattr(settings, "metadata_platform", None) or os.environ.get("METADATA_PLATFORM") or "drg"
    env = getattr(settings, "metadata_env", None) or os.environ.get("METADATA_ENV") or "PROD"
    return platform, env


def table_names(generation: Generation) -> list[str]:
    return [r.name for r in generation.resources] + [p.table_name for p in generation.many_to_many]


def dataset_urns(generation: Generation, settings: Any = None) -> list[str]:
    """The dataset URN of each table of `generation` (listed in the generation's response)."""
    platform, env = options(settings)
    return [dataset_urn(platform, name, env) for name in table_names(generation)]


def _field(spec: FieldSpec, key: bool, nullable: bool | None = None, path: str | None = None) -> dict[str, Any]:
    native = spec.type if not spec.format or spec.format == "default" else f"{spec.type}({spec.format})"
    found: dict[str, Any] = {
        "fieldPath": path or spec.name, "nullable": (not (spec.required or key)) if nullable is None else nullable,
        "type": {"type": {"__type": DATAHUB_TYPES.get(spec.type, "NullType")}}, "nativeDataType": native,
        "recursive": False, "isPartOfKey": key, "protected": spec.protected, "searchable": spec.searchable,
    }
    if spec.description or spec.title:
        found["description"] = spec.description or spec.title
    return found


def schemas(generation: Generation, platform: str, env: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dataset URN, schemaMetadata value) per table."""
    def urn(name: str) -> str:
        return dataset_urn(platform, name, env)

    for resource in generation.resources:
        keys = set(resource.primary_key)
        foreign = [{"name": f"fk_{resource.name}_{'_'.join(fk.fields)}",
                    "sourceFields": [field_urn(urn(resource.name), f) for f in fk.fields],
                    "foreignFields": [field_urn(urn(fk.resource), f) for f in fk.reference_fields],
                    "foreignDataset": urn(fk.resource)} for fk in resource.foreign_keys]
        yield urn(resource.name), _schema(resource.name, platform, [_field(f, f.name in keys) for f in resource.fields],
                                          list(resource.primary_key), foreign)
    for pair in generation.many_to_many:
        fields, foreign = [], []
        for side, pairs in association_columns(pair, generation).items():
            target = generation.resource(side.split(":", 1)[1])
            fields += [_field(target.field(k), True, nullable=False, path=column) for column, k in pairs]
            foreign.append({"name": f"fk_{pair.table_name}_{'_'.join(c for c, _ in pairs)}",
                            "sourceFields": [field_urn(urn(pair.table_name), c) for c, _ in pairs],
                            "foreignFields": [field_urn(urn(target.name), k) for _, k in pairs],
                            "foreignDataset": urn(target.name)})
        yield urn(pair.table_name), _schema(pair.table_name, platform, fields, [f["fieldPath"] for f in fields],
                                            foreign)


def _schema(name: str, platform: str, fields: list[dict[str, Any]], keys: list[str],
            foreign: list[dict[str, Any]]) -> dict[str, Any]:
    digest = hashlib.sha256(dumps_text([fields, keys, foreign]).encode()).hexdigest()
    return {"schemaName": name, "platform": f"urn:li:dataPlatform:{platform}", "version": 0, "hash": digest,
            "platformSchema": {"__type": "OtherSchema", "rawSchema": ""}, "fields": fields, "primaryKeys": keys,
            "foreignKeys": foreign}


def _ours(entry: Any, platform: str) -> bool:
    return isinstance(entry, dict) and (entry.get("source") or {}).get("url") == f"urn:li:dataPlatform:{platform}"


def publish_generation(connection: Connection, generation: Generation, principal: Principal,
                       settings: Any = None) -> list[str]:
    """Publish `generation`'s datasets (see the module's doc); the dataset URNs. Call it after the
    generation's ownership is recorded, on the generation's connection."""
    platform, env = options(settings)
    write = {"actor": user_urn(principal.subject), "run_id": f"generation-{generation.digest[:12]}",
             "skip_unchanged": True, "system": True}
    source = {"type": "SERVICE", "url": f"urn:li:dataPlatform:{platform}"}
    owners = _owners(connection)
    published = dict(schemas(generation, platform, env))
    current = store.latest(connection, list(published), ("schemaMetadata", "ownership", "status"))
    planned: list[tuple[str, str, Callable[[AspectRecord | None], dict[str, Any]]]] = []
    by_product: dict[str, list[str]] = {}
    for urn_text, schema in published.items():
        product, team = owners.get(parse_urn(urn_text).name, (None, None))
        ours = [{"owner": team_urn(team), "type": "TECHNICAL_OWNER", "source": source}] if team else []
        planned += [
            (urn_text, "schemaMetadata", lambda _, schema=schema: schema),
            (urn_text, "ownership", lambda current, ours=ours: {
                **(current.value if current else {}),
                "owners": [o for o in _list(current, "owners") if not _ours(o, platform)] + ours}),
            (urn_text, "status", lambda current: {**(current.value if current else {}), "removed": False}),
        ]
        if product:
            by_product.setdefault(product, []).append(urn_text)
    planned += [(urn_text, "status", lambda current: {**(current.value if current else {}), "removed": True})
                for urn_text in _previously_published(connection) - published.keys()]
    for product in set(by_product) | _products_listing(connection, platform):
        assets = [{"destinationUrn": u, "source": source} for u in sorted(by_product.get(product, []))]
        planned.append((product_urn(product), "dataProductProperties", lambda current, assets=assets: {
            **(current.value if current else {}),
            "assets": [a for a in _list(current, "assets") if not _ours(a, platform)] + assets}))
    # In (urn, aspect) order, as every writer locks: a generation and a user's batch cannot deadlock.
    for urn_text, aspect, value in sorted(planned, key=lambda p: (p[0], p[1])):
        before = current.get(urn_text, {}).get(aspect)
        if urn_text in published and before is not None and value(before) == before.value:
            continue  # unchanged (most aspects, on a regeneration): no lock, no write
        store.write_aspect(connection, parse_urn(urn_text), aspect, value, **write)
    return list(published)


def _list(current: AspectRecord | None, key: str) -> list[Any]:
    found = current.value.get(key) if current else None
    return found if isinstance(found, list) else []


def _owners(connection: Connection) -> Mapping[str, tuple[str | None, str | None]]:
    """Table → (product, owner team), as this generation recorded it (a product's owner wins)."""
    owned = {}
    product_owner = dict(connection.execute(select(products.c.name, products.c.owner)).all())
    for row in connection.execute(select(resource_owners)):
        owned[row.resource] = (row.product, product_owner.get(row.product, row.team) if row.product else row.team)
    return owned


def _previously_published(connection: Connection) -> set[str]:
    return set(connection.execute(select(aspects.c.urn).where(aspects.c.aspect == "schemaMetadata",
                                                              aspects.c.system.is_(True))).scalars())


def _products_listing(connection: Connection, platform: str) -> set[str]:
    """Products that list one of the generator's datasets (a product may have lost all its tables)."""
    prefix = "urn:li:dataProduct:"
    rows = connection.execute(select(relationships.c.source).distinct().where(
        relationships.c.relationship_type == "Contains",
        relationships.c.destination.startswith(f"urn:li:dataset:(urn:li:dataPlatform:{platform},", autoescape=True)))
    return {u[len(prefix):] for u in rows.scalars() if u.startswith(prefix)}
