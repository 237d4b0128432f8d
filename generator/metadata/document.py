"""The OpenAPI document of the metadata graph's routes, served at `/openapi/v3/api-docs` (the seed's place)
with Swagger UI at `/openapi/swagger-ui/`, and offered beside the admin document (schemas/admin.yaml, not this
package's) by the admin Swagger UI at `/admin/ui`. Examples are requests the service accepts as they are, so
Swagger UI's "Try it out" works unedited."""

from __future__ import annotations

from typing import Any

from generator.metadata.aspects import RELATIONSHIP_TYPES
from generator.metadata.timeline import CATEGORIES
from generator.metadata.urns import ENTITY_TYPES, dataset_urn

JSON = "application/json"


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False,
           explode: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema,
            **({"explode": explode} if schema.get("type") == "array" else {})}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def _answers(ok: str, *codes: int) -> dict[str, Any]:
    problem = {"description": "A problem (RFC 7807)", "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}
    return {"200": {"description": ok, "content": {JSON: {"schema": {}}}}, **{str(c): problem for c in codes}}


URNS = _query("urns", "Entity URNs; repeat the parameter for more (URNs hold commas)",
              {"type": "array", "items": {"type": "string"}}, required=True)
BOOL = {"type": "boolean"}
VERSION_HEADERS = [
    {"name": "If-Version-Match", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "Write only if the aspect's current version is this one (else 412)"},
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string", "enum": ["*"]},
     "description": "Write only if the aspect does not exist yet (else 412)"},
]


def document(platform: str = "drg", env: str = "PROD") -> dict[str, Any]:
    """The document; examples name the generator's dataset of a table `people` (`platform`, `env`)."""
    entity = {**_path("entityName", "Entity type", {"type": "string", "enum": list(ENTITY_TYPES)}),
              "example": "dataset"}
    people = dataset_urn(platform, "people", env)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Metadata graph", "version": "1.0.0",
                 "description": "Entities, versioned aspects, relationships and the timeline, in DataHub's "
                                "OpenAPI shapes. See generator/metadata/README.md."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "pointer": {"type": "string"}, "message": {"type": "string"}}}}}}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/openapi/entities/v1/": {
                "post": {"summary": "Upsert aspects", "parameters": [
                    _query("createEntityIfNotExists", "422 if an entity exists; nothing written", BOOL),
                    *VERSION_HEADERS],
                    "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "array", "items": {
                        "type": "object", "required": ["entityType", "entityUrn", "aspect"], "properties": {
                            "entityType": {"type": "string", "enum": list(ENTITY_TYPES)},
                            "entityUrn": {"type": "string"},
                            "aspect": {"type": "object", "description": "with its __type"},
                            "headers": {"type": "object", "description": "If-Version-Match / If-None-Match"},
                            "systemMetadata": {"type": "object", "properties": {"runId": {"type": "string"}}}}}}}}},
                    "responses": _answers("The URNs written", 400, 401, 403, 409, 412, 422)},
                "delete": {"summary": "Delete entities", "parameters": [
                    URNS, _query("soft", "Soft delete (status.removed), the default; false: remove everything",
                                 BOOL)],
                    "responses": _answers("What was deleted", 400, 401, 403, 404, 409)},
            },
            "/openapi/entities/v1/latest": {"get": {"summary": "Latest aspects", "parameters": [
                URNS, _query("aspectNames", "Aspect names", {"type": "array", "items": {"type": "string"}}),
                _query("includeSoftDeleted", "Show soft-deleted entities", BOOL)],
                "responses": _answers("The entities and their aspects", 400, 401, 403)}},
            "/openapi/v3/entity/{entityName}/batchGet": {"post": {
                "summary": "Aspects of many entities, a version each by If-Version-Match",
                "parameters": [entity, _query("systemMetadata", "Show versions and run ids", BOOL),
                               _query("includeSoftDeleted", "Show soft-deleted entities", BOOL)],
                "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "array", "items": {
                    "type": "object", "required": ["urn"], "properties": {"urn": {"type": "string"}},
                    "additionalProperties": {"type": "object", "properties": {"headers": {"type": "object"}}}}},
                    "example": [{"urn": people, "schemaMetadata": {}, "ownership": {}}]}}},
                "responses": _answers("The entities", 400, 401, 403, 404)}},
            "/openapi/v3/entity/{entityName}/{urn}/{aspect}": {"patch": {
                "summary": "JSON Patch with keyed array paths",
                "parameters": [entity, _path("urn", "Entity URN"), _path("aspect", "Aspect name"), *VERSION_HEADERS],
                "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object",
                                                                                "required": ["patch"], "properties": {
                    "patch": {"type": "array", "items": {"type": "object"}},
                    "arrayPrimaryKeys": {"type": "object", "additionalProperties": {
                        "type": "array", "items": {"type": "string"}}},
                    "forceGenericPatch": BOOL}}}}},
                "responses": _answers("The new version", 400, 401, 403, 404, 409, 412)}},
            "/openapi/relationships/v1/": {"get": {"summary": "Related entities", "parameters": [
                _query("urn", "Entity URN", {"type": "string"}, required=True),
                _query("relationshipTypes", "Relationship types", {"type": "array", "items": {
                    "type": "string", "enum": list(RELATIONSHIP_TYPES)}}),
                _query("direction", "OUTGOING: the entity is the source", {"type": "string", "enum": [
                    "INCOMING", "OUTGOING"], "default": "OUTGOING"}),
                _query("start", "Offset", {"type": "integer", "minimum": 0, "default": 0}),
                _query("count", "Page size", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 200}),
                _query("includeSoftDeleted", "Show soft-deleted entities", BOOL)],
                "responses": _answers("{start, count, total, entities}", 400, 401, 403)}},
            "/openapi/v2/timeline/v1/{urn}": {"get": {"summary": "Change transactions, oldest first", "parameters": [
                _path("urn", "Entity URN"),
                _query("categories", "Change categories", {"type": "array", "items": {
                    "type": "string", "enum": list(CATEGORIES)}}),
                _query("startTime", "From (epoch ms)", {"type": "integer", "format": "int64"}),
                _query("endTime", "To (epoch ms)", {"type": "integer", "format": "int64"})],
                "responses": _answers("The transactions", 400, 401, 403, 404)}},
        },
    }
