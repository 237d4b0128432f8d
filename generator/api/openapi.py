"""The served OpenAPI 3.0 document, generated from the specs.

Only whitelisted operations appear. The payload's summaries and descriptions are kept; everything else
(schemas, parameters, responses) is generated so the document is always complete and valid. Literal paths
(`/t/query`) come before templated ones (`/t/{id}`) so routing never mistakes `query` for a key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from generator.payload.specs import JSON_TYPES, FieldSpec, Generation, OperationSpec, ResourceSpec

INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
KEY_TEXT = {
    "integer": "^-?[0-9]{1,19}$",
    "year": "^-?[0-9]{1,4}$",
    "number": "^-?[0-9]{1,300}([.][0-9]{1,300})?([eE][-+]?[0-9]{1,3})?$",
    "boolean": "^(true|false)$",
}
PAGE_NAMES = frozenset({"offset", "limit"})
PROBLEM = {"$ref": "#/components/responses/Problem"}
DEFAULT_SUMMARIES = {
    "list": "List {t} (paginated, ordered by primary key)",
    "create": "Create one {t} row",
    "read": "Get one {t} row by primary key",
    "replace": "Replace (or create) the {t} row at this key",
    "update": "Update some fields of one {t} row",
    "delete": "Delete one {t} row",
    "query": "Find {t} rows whose fields equal the given values",
}
TEXT_PATTERNS = {
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "datetime": r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$",
    "time": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$",
    "yearmonth": r"^\d{4}-(0[1-9]|1[0-2])$",
    "duration": r"^-?P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$",
    "geopoint": r"^\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*$",
}


def operation_id(op: OperationSpec) -> str:
    return f"{op.resource}.{op.kind}.{op.method}"


def value_schema(field: FieldSpec) -> dict[str, Any]:
    """JSON Schema (OpenAPI 3.0 dialect) of one field's value, constraints included."""
    schema = _type_schema(field)
    text = " - ".join(p for p in (field.title, field.description) if p)
    if text:
        schema["description"] = text
    if field.enum is not None:
        schema["enum"] = list(field.enum)
    if field.type == "string":
        for key, value in (("minLength", field.min_length), ("maxLength", field.max_length)):
            if value is not None:
                schema[key] = value
        if field.pattern is not None:  # Table Schema patterns match the whole value; JSON Schema's search
            schema["pattern"] = f"^(?:{field.pattern})$"
    if field.type in ("integer", "number", "year"):
        for key in ("minimum", "maximum"):
            if getattr(field, key) is not None:
                schema[key] = getattr(field, key)
    return schema


def _type_schema(field: FieldSpec) -> dict[str, Any]:
    match field.type:
        case "string" if field.is_uuid:
            return {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}
        case "string":
            return {"type": "string", "format": field.format} if field.format else {"type": "string"}
        case "integer":
            return {"type": "integer", "format": "int64", **INT64}
        case "number":
            return {"type": "number"}
        case "boolean":
            return {"type": "boolean"}
        case "year":
            return {"type": "integer", "minimum": -9999, "maximum": 9999}
        case "object":
            return {"type": "object"}
        case "array":
            return {"type": "array", "items": {}}
        case "datetime":  # the pattern, because the date-time format is only checked if rfc3339-validator is
            return {"type": "string", "format": "date-time", "pattern": TEXT_PATTERNS["datetime"]}  # installed
        case "date" | "time" | "yearmonth" | "duration":
            return {"type": "string", "format": field.type, "pattern": TEXT_PATTERNS[field.type]}
        case "geopoint":
            return _geopoint_schema(field.format)
        case "geojson":
            return {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}
    return {}  # any


def _geopoint_schema(format_: str | None) -> dict[str, Any]:
    if format_ == "array":
        return {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    if format_ == "object":
        coordinate = {"type": "number"}
        return {"type": "object", "required": ["lon", "lat"], "additionalProperties": False,
                "properties": {"lon": coordinate, "lat": coordinate}}
    return {"type": "string", "pattern": TEXT_PATTERNS["geopoint"]}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema or "type" not in schema:
        return schema
    schema = {**schema, "nullable": True}
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def row_schema(resource: ResourceSpec, *, required: list[str] | None, nullable_all: bool) -> dict[str, Any]:
    keys = set(resource.primary_key)
    properties = {
        f.name: value_schema(f) if (f.required or f.name in keys) and not nullable_all else _nullable(value_schema(f))
        for f in resource.fields
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if resource.description:
        schema["description"] = resource.description
    return schema


def input_required(resource: ResourceSpec) -> list[str]:
    """Fields a create must carry: required ones, and key fields the database or we cannot invent."""
    invented = {f.name for f in resource.key_fields if resource.autoincrement or f.is_uuid}
    keys = set(resource.primary_key)
    return [f.name for f in resource.fields if (f.required or f.name in keys) and f.name not in invented]


def key_parameter(resource: ResourceSpec) -> dict[str, Any]:
    fields = resource.key_fields
    if len(fields) == 1 and fields[0].type in KEY_TEXT:
        # Keys travel as text and are converted by the handler: Starlette's int converter fails with a 500
        # on thousands of digits, and its float converter would round a NUMERIC key.
        schema = {"type": "string", "pattern": KEY_TEXT[fields[0].type]}
        described = f"Primary key ({fields[0].name}, {fields[0].type})"
    elif len(fields) == 1:
        schema = {k: v for k, v in _type_schema(fields[0]).items() if k != "description"}
        described = f"Primary key ({fields[0].name})"
    else:
        schema = {"type": "string"}
        described = f"Composite primary key: {','.join(f.name for f in fields)} joined by commas, in that order"
    return {"name": "id", "in": "path", "required": True, "description": described, "schema": schema}


def build_document(generation: Generation, *, default_limit: int, max_limit: int) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = _shared_schemas()
    for resource in generation.resources:
        operations = generation.operations_for(resource.name)
        if not operations:
            continue
        schemas.update(_resource_schemas(resource))
        for op in operations:
            path = served_path(op)
            paths.setdefault(path, {})[op.method] = _operation(op, resource)
    ordered = dict(sorted(paths.items(), key=lambda item: (item[0].split("/")[1], "{" in item[0], item[0])))
    info: dict[str, Any] = {"title": generation.title, "version": generation.version}
    if generation.description:
        info["description"] = generation.description
    return {
        "openapi": "3.0.3",
        "info": info,
        "paths": ordered,
        "components": {
            "schemas": schemas,
            "parameters": _page_parameters(default_limit, max_limit),
            "responses": {"Problem": {
                "description": "RFC 7807 problem details",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }},
        },
    }


def served_path(op: OperationSpec) -> str:
    match op.kind:
        case "list" | "create":
            return f"/{op.resource}"
        case "query":
            return f"/{op.resource}/query"
    return f"/{op.resource}/{{id}}"


def _operation(op: OperationSpec, resource: ResourceSpec) -> dict[str, Any]:
    t = resource.name
    document: dict[str, Any] = {
        "operationId": operation_id(op),
        "tags": [t],
        "summary": op.summary or DEFAULT_SUMMARIES[op.kind].format(t=t),
        "responses": {"400": PROBLEM},
    }
    if op.description:
        document["description"] = op.description
    page = [{"$ref": "#/components/parameters/offset"}, {"$ref": "#/components/parameters/limit"}]
    body = {"$ref": f"#/components/schemas/{t}_input"}
    ok_row = _json_response("The row", t)
    listed = _json_response("One page of rows and navigation links", f"{t}_list")
    created = _json_response("Created: the new key", "Created")
    match op.kind:
        case "list":
            document |= {"parameters": page}
            document["responses"]["200"] = listed
        case "create":
            document["requestBody"] = _body(body)
            document["responses"] |= {"201": created, "409": PROBLEM}
        case "query" if op.method == "post":
            document |= {"parameters": page, "requestBody": _body({"$ref": f"#/components/schemas/{t}_filter"})}
            document["responses"]["200"] = listed
        case "query":
            document["parameters"] = page + _filter_parameters(resource)
            document["responses"]["200"] = listed
        case "read":
            document["responses"] |= {"200": ok_row, "404": PROBLEM}
        case "replace":
            document["requestBody"] = _body({"$ref": f"#/components/schemas/{t}_replace"})
            document["responses"] |= {"200": ok_row, "201": ok_row, "409": PROBLEM}
        case "update":
            document["requestBody"] = _body({"$ref": f"#/components/schemas/{t}_patch"})
            document["responses"] |= {"200": ok_row, "404": PROBLEM, "409": PROBLEM}
        case "delete":
            document["responses"] |= {"204": {"description": "Deleted"}, "404": PROBLEM, "409": PROBLEM}
    if op.kind in ("read", "replace", "update", "delete"):
        document["parameters"] = [key_parameter(resource)]
    return document


def _json_response(description: str, schema_name: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def filterable(resource: ResourceSpec) -> list[FieldSpec]:
    """Fields an exact-match query can compare (JSON-like values cannot be compared portably)."""
    return [f for f in resource.fields if f.type not in JSON_TYPES]


def _filter_parameters(resource: ResourceSpec) -> list[dict[str, Any]]:
    scalar = [f for f in filterable(resource) if f.name not in PAGE_NAMES]  # those filter through POST
    return [{"name": f.name, "in": "query", "required": False, "description": f"Rows whose {f.name} equals this",
             "schema": {k: v for k, v in value_schema(f).items() if k not in ("description", "enum")}}
            for f in scalar]  # fmt: skip


def _resource_schemas(resource: ResourceSpec) -> dict[str, Any]:
    t = resource.name
    replace_required = [n for n in input_required(resource) if n not in resource.primary_key]
    return {
        t: row_schema(resource, required=None, nullable_all=False),
        f"{t}_input": row_schema(resource, required=input_required(resource), nullable_all=False),
        f"{t}_replace": row_schema(resource, required=replace_required, nullable_all=False),
        f"{t}_patch": row_schema(resource, required=None, nullable_all=False),
        f"{t}_filter": row_schema(replace(resource, fields=tuple(filterable(resource))), required=None,
                                  nullable_all=True),
        f"{t}_list": {
            "type": "object",
            "properties": {
                t: {"type": "array", "items": {"$ref": f"#/components/schemas/{t}"}},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/Links"}},
            },
        },
    }


def _shared_schemas() -> dict[str, Any]:
    return {
        "Links": {"type": "object", "properties": {
            "rel": {"type": "string", "enum": ["self", "first", "prev", "next"]},
            "href": {"type": "string", "example": "/people?offset=0&limit=100"},
        }},
        "Created": {"type": "object", "properties": {
            "message": {"type": "string", "example": "Successfully added new resource."},
            "id": {"description": "The new row's primary key (an object of key fields when composite)"},
        }},
        "Problem": {"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "pointer": {"type": "string"}, "message": {"type": "string"}}}},
        }},
    }  # fmt: skip


def _page_parameters(default_limit: int, max_limit: int) -> dict[str, Any]:
    return {
        "offset": {"name": "offset", "in": "query", "required": False, "description": "Rows to skip",
                   "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1,
                              "default": 0}},
        "limit": {"name": "limit", "in": "query", "required": False,
                  "description": f"Rows per page (1 to {max_limit})",
                  "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit}},
    }  # fmt: skip
