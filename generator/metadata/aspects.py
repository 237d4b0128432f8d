"""Which aspects each entity type holds, their `__type` names, and the relationships they imply. Pure.

An aspect name is its `__type` with a lower-case first letter (`SchemaMetadata` → `schemaMetadata`), as in
DataHub. Relationships are derived from aspects whenever one is written, so they never drift from them:

| aspect | path | relationship (OUTGOING from the aspect's entity) |
|---|---|---|
| `ownership` | `owners[].owner` | `OwnedBy` |
| `dataProductProperties` | `assets[].destinationUrn` | `Contains` |
| `groupMembership` | `groups[]` | `IsPartOf` |
| `upstreamLineage` | `upstreams[].dataset` | `DownstreamOf` |
| `dataJobInputOutput` | `outputDatasets[]` | `Produces` |"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from generator.metadata.urns import CONTROL

COMMON = ("ownership", "globalTags", "status", "glossaryTerms", "institutionalMemory", "domains")
ASPECTS: Mapping[str, frozenset[str]] = {
    "dataset": frozenset({*COMMON, "schemaMetadata", "datasetProperties", "editableDatasetProperties",
                          "editableSchemaMetadata", "upstreamLineage", "datasetKey"}),
    "dataProduct": frozenset({*COMMON, "dataProductProperties", "dataProductKey"}),
    "corpGroup": frozenset({*COMMON, "corpGroupInfo", "corpGroupEditableInfo", "corpGroupKey"}),
    "corpuser": frozenset({*COMMON, "corpUserInfo", "corpUserEditableInfo", "groupMembership", "corpUserKey"}),
    "dataJob": frozenset({*COMMON, "dataJobInfo", "dataJobInputOutput", "editableDataJobProperties",
                          "dataJobKey"}),
}
RELATIONSHIP_TYPES = ("OwnedBy", "Contains", "IsPartOf", "DownstreamOf", "Produces")
RELATING = frozenset({"ownership", "dataProductProperties", "groupMembership", "upstreamLineage",
                      "dataJobInputOutput"})  # the aspects `derived_relationships` reads
GENERATED = frozenset({"schemaMetadata"})  # what the generator writes for its datasets: read-only to users


def aspect_name(type_name: str) -> str:
    return type_name[:1].lower() + type_name[1:]


def type_name(aspect: str) -> str:
    return aspect[:1].upper() + aspect[1:]


def unknown_aspect(entity_type: str, aspect: str) -> str | None:
    """Why `aspect` is not one of `entity_type`'s (None: it is)."""
    if aspect in ASPECTS[entity_type]:
        return None
    return f"{aspect!r} is not an aspect of a {entity_type} (one of {', '.join(sorted(ASPECTS[entity_type]))})"


def bad_link(aspect: str, value: Mapping[str, Any]) -> str | None:
    """Why a relationship `value` implies cannot be kept (None: they all can): a destination is stored as
    text, and PostgreSQL cannot store a NUL in text (nor is any control character part of a URN)."""
    for kind, destination in derived_relationships(aspect, value):
        if CONTROL.search(destination):
            return f"the {kind} relationship to {destination!r} has a control character, which no URN has"
    return None


def _items(value: Mapping[str, Any], key: str) -> list[Any]:
    found = value.get(key)
    return found if isinstance(found, list) else []


def derived_relationships(aspect: str, value: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(relationship type, destination URN) pairs an aspect value implies."""
    if aspect == "ownership":
        yield from (("OwnedBy", o["owner"]) for o in _items(value, "owners")
                    if isinstance(o, dict) and isinstance(o.get("owner"), str))
    elif aspect == "dataProductProperties":
        yield from (("Contains", a["destinationUrn"]) for a in _items(value, "assets")
                    if isinstance(a, dict) and isinstance(a.get("destinationUrn"), str))
    elif aspect == "groupMembership":
        yield from (("IsPartOf", g) for g in _items(value, "groups") if isinstance(g, str))
    elif aspect == "upstreamLineage":
        yield from (("DownstreamOf", u["dataset"]) for u in _items(value, "upstreams")
                    if isinstance(u, dict) and isinstance(u.get("dataset"), str))
    elif aspect == "dataJobInputOutput":
        yield from (("Produces", d) for d in _items(value, "outputDatasets") if isinstance(d, str))
