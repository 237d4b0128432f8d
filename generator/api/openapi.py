"""The served OpenAPI 3.0 document, generated from the specs.

Only whitelisted operations appear. The payload's summaries and descriptions are kept; everything else
(schemas, parameters, responses) is generated so the document is always complete and valid. Literal paths
(`/t/query`) come before templated ones (`/t/{id}`) so routing never mistakes `query` for a key.

Every property and parameter carries an `example` the service accepts (`examples.py`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from generator.api.examples import GEOPOINT_EXAMPLES, INT64, Examples, key_text, resource_examples
from generator.api.query import RESERVED
from generator.api.relations import Relation, relations_of
from generator.literals import KEY_TEXT, TEXT_FORMS, TEXT_PATTERNS, UUID_PATTERN
from generator.payload.specs import JSON_TYPES, FieldSpec, Generation, OperationSpec, ResourceSpec

PROBLEM = {"$ref": "#/components/responses/Problem"}

def operation_id(op: OperationSpec) -> str:
    return f"{op.resource}.{op.kind}.{op.method}"


def value_schema(field: FieldSpec, example: Any = None) -> dict[str, Any]:
    """JSON Schema (OpenAPI 3.0 dialect) of one field's value, constraints included, with `example` if any."""
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
    if example is not None:
        schema["example"] = example
    if field.protected:  # stored encrypted; searchable: equality filters through a blind index
        schema["x-protected"] = True
        schema["x-searchable"] = field.searchable
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
        case "object":  # openapi-typescript reads a bare object as Record<string, never>
            return {"type": "object", "additionalProperties": True}
        case "array":
            return {"type": "array", "items": {}}
        case "date":
            return {"type": "string", "format": "date", "pattern": TEXT_PATTERNS["date"]}
        case "datetime" | "time" | "yearmonth" | "duration":
            # No `format`: JSON Schema's date-time, time and duration (RFC 3339) differ from what Table
            # Schema and this service accept (no seconds, no offset, signed and fractional durations).
            return {"type": "string", "pattern": TEXT_PATTERNS[field.type],
                    "description": TYPE_NOTES[field.type]}
        case "geopoint":
            return _geopoint_schema(field.format)
        case "geojson":
            return geojson_schema()
    return {}  # any


TYPE_NOTES = {
    "datetime": "ISO 8601 date and time, optional seconds, fraction and UTC offset (kept as sent)",
    "time": "local time of day, optional seconds and fraction, no offset",
    "yearmonth": "YYYY-MM",
    "duration": "ISO 8601 duration, e.g. P1Y2M3DT4H; may be signed and fractional",
}
_POSITION = {"type": "array", "minItems": 2, "items": {"type": "number"}}
_COORDINATES = {
    "Point": _POSITION,
    "MultiPoint": {"type": "array", "items": _POSITION},
    "LineString": {"type": "array", "minItems": 2, "items": _POSITION},
    "MultiLineString": {"type": "array", "items": {"type": "array", "minItems": 2, "items": _POSITION}},
}  # Polygon and MultiPolygon are accepted too, but their rings must be closed, which JSON Schema cannot state


def geojson_schema() -> dict[str, Any]:
    """RFC 7946 as far as JSON Schema can say it (a polygon's rings must also end where they start)."""
    geometries = [{"type": "object", "required": ["type", "coordinates"], "properties": {
        "type": {"type": "string", "enum": [kind]}, "coordinates": coordinates}} for kind, coordinates
        in _COORDINATES.items()]  # fmt: skip
    geometry = {"oneOf": geometries}
    feature = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "geometry": {"oneOf": [*geometries, {"enum": [None]}]},
        "properties": {"type": "object", "nullable": True, "additionalProperties": True}}}
    return {"type": "object", "additionalProperties": True, "x-checked-by": "the geojson converter",
            "example": {"type": "Point", "coordinates": [13.4, 52.52]},
            "description": "RFC 7946 GeoJSON: a geometry, a Feature or a FeatureCollection. Polygon and "
                           "MultiPolygon are accepted too, with closed rings (four or more positions, the last "
                           "equal to the first), which JSON Schema cannot state, so they are not listed here",
            "oneOf": [*geometries, feature,
                      {"type": "object", "required": ["type", "features"], "properties": {
                          "type": {"type": "string", "enum": ["FeatureCollection"]},
                          "features": {"type": "array", "items": feature}}},
                      {"type": "object", "required": ["type", "geometries"], "properties": {
                          "type": {"type": "string", "enum": ["GeometryCollection"]},
                          "geometries": {"type": "array", "items": geometry}}}]}  # fmt: skip


def _geopoint_schema(format_: str | None) -> dict[str, Any]:
    if format_ == "array":
        return {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    if format_ == "object":
        example = GEOPOINT_EXAMPLES["object"]
        return {"type": "object", "required": ["lon", "lat"], "additionalProperties": False,
                "properties": {"lon": {"type": "number", "example": example["lon"]},
                               "lat": {"type": "number", "example": example["lat"]}}}
    return {"type": "string", "pattern": TEXT_PATTERNS["geopoint"]}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema or "type" not in schema:
        return schema
    schema = {**schema, "nullable": True}
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def row_schema(resource: ResourceSpec, examples: dict[str, Any], *, required: list[str] | None,
               nullable_all: bool) -> dict[str, Any]:
    keys = set(resource.primary_key)
    properties = {}
    for f in resource.fields:
        schema = value_schema(f, examples.get(f.name))
        properties[f.name] = schema if (f.required or f.name in keys) and not nullable_all else _nullable(schema)
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


def output_required(resource: ResourceSpec) -> list[str]:
    """Fields a row read back always has a value for: the key and NOT NULL fields. Generated clients type the
    others as optional."""
    keys = set(resource.primary_key)
    return [f.name for f in resource.fields if f.required or f.name in keys]


def key_parameter(resource: ResourceSpec, examples: dict[str, Any]) -> dict[str, Any]:
    """The `{id}` path parameter; its example is the key of the row the body examples create, so Swagger UI's
    POST then GET, PUT or PATCH of the example key work unedited."""
    fields = resource.key_fields
    parts = [examples.get(f.name) for f in fields]
    if len(fields) == 1 and fields[0].type in KEY_TEXT:
        # Keys travel as text and are converted by the handler: Starlette's int converter fails with a 500
        # on thousands of digits, and its float converter would round a NUMERIC key.
        schema = {"type": "string", "pattern": KEY_TEXT[fields[0].type]}
        example_: Any = None if parts[0] is None else key_text(parts[0])
        described = f"Primary key ({fields[0].name}, {fields[0].type})"
    elif len(fields) == 1:
        schema = {k: v for k, v in _type_schema(fields[0]).items() if k != "description"}
        example_ = parts[0]
        described = f"Primary key ({fields[0].name})"
    else:
        schema = {"type": "string"}
        example_ = None if None in parts else ",".join(key_text(p) for p in parts)
        described = f"Composite primary key: {','.join(f.name for f in fields)} joined by commas, in that order"
    if example_ is not None:
        schema["example"] = example_
    return {"name": "id", "in": "path", "required": True, "description": described, "schema": schema}


def build_document(generation: Generation, *, default_limit: int, max_limit: int,
                   auth_required: bool = False) -> dict[str, Any]:
    """The served document. `auth_required` (production) makes a credential required; otherwise the security
    requirements also list `{}`: development mode serves requests without credentials too."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = _shared_schemas()
    examples = resource_examples(generation)
    for resource in generation.resources:
        operations = generation.operations_for(resource.name)
        if not operations:
            continue
        schemas.update(_resource_schemas(resource, examples[resource.name], relations_of(generation, resource.name)))
        for op in operations:
            related = generation.resource(op.related) if op.related else None
            if related is not None and related.name not in schemas:
                schemas.update(_resource_schemas(related, examples[related.name],
                                                 relations_of(generation, related.name)))
            paths.setdefault(op.served_path, {})[op.method] = _operation(op, resource, related, examples, generation)
            paths[op.served_path][op.method]["responses"].setdefault("401", PROBLEM)  # missing or bad credentials
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
            "parameters": _shared_parameters(default_limit, max_limit),
            "responses": {"Problem": {
                "description": "RFC 7807 problem details",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }},
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": SECURITY if auth_required else [*SECURITY, {}],
    }


# Either credential; in development mode a request without one is served too (generator/identity/README.md).
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A JWT from the identity provider, or a service token (AUTH_TOKENS)"},
    "teamKey": {"type": "apiKey", "in": "header", "name": "X-Auth-Token", "description": "A team API key"},
}
SECURITY = [{"bearerAuth": []}, {"teamKey": []}]


def served_path(op: OperationSpec) -> str:
    return op.served_path


READ_PARAMETERS = [{"$ref": f"#/components/parameters/{name}"} for name in ("limit", "offset", "Prefer")]
GRAMMAR = ("Filters use PostgREST's syntax: `field=op.value` with op one of eq, neq, gt, gte, lt, lte, like, ilike "
           "(`*` is the wildcard), in (`in.(1,2)`), is (`is.null`), each negatable (`not.eq.x`); "
           "`or=(a.eq.1,b.gt.2)` and `and=(...)` nest; JSON fields by path (`data->>city=eq.Boston`); a bare "
           "value is an exact match. `select=id,name,child(*)` embeds related rows; `next` links carry a cursor; "
           "`Prefer: count=exact|planned|estimated` adds a count; `Accept: text/csv` gives CSV.")


def _operation(op: OperationSpec, resource: ResourceSpec, related: ResourceSpec | None,
               examples: Examples, generation: Generation) -> dict[str, Any]:
    t = resource.name
    embeddable = relations_of(generation, t)
    related_embeddable = relations_of(generation, related.name) if related else {}
    mine = examples[t]
    document: dict[str, Any] = {
        "operationId": operation_id(op),
        "tags": [t],
        "summary": op.summary or op.info.summary.format(t=t, c=related.name if related else ""),
        "responses": {"400": PROBLEM},
    }
    if op.description:
        document["description"] = op.description
    ok_row = _json_response("The row", t, headers=ETAG)
    match op.kind:
        case "list":
            document |= {"parameters": [*READ_PARAMETERS, *_shape_parameters(resource, embeddable),
                                        *_filter_parameters(resource, mine)], "description": GRAMMAR}
            document["responses"] |= {"200": _list_response(t), "406": PROBLEM}
        case "create":
            single = {"$ref": f"#/components/schemas/{t}_input"}
            document["requestBody"] = _body({"oneOf": [single, {"type": "array", "minItems": 1, "items": single}]},
                                            example=_example_row(mine))
            document["parameters"] = [{"$ref": "#/components/parameters/PreferResolution"}]
            created = _json_response("Created: the new key (keys, for an array of rows)", "Created")
            created["content"]["application/json"]["schema"] = {"oneOf": [
                {"$ref": "#/components/schemas/Created"}, {"$ref": "#/components/schemas/CreatedMany"}]}
            document["responses"] |= {"201": created, "409": PROBLEM}
        case "query" if op.method == "post":
            document |= {"parameters": [{"$ref": "#/components/parameters/limit"},
                                        {"$ref": "#/components/parameters/offset"},
                                        {"$ref": "#/components/parameters/Prefer"}],
                         "requestBody": _body({"$ref": f"#/components/schemas/{t}_filter"}),
                         "description": "Fields equal to values (AND), or operators: {\"age\": {\"gte\": 18}}; "
                                        "`order`, `limit`, `offset` in the body too."}
            document["responses"] |= {"200": _list_response(t), "406": PROBLEM}
        case "query":
            document |= {"parameters": [*READ_PARAMETERS, *_shape_parameters(resource, embeddable),
                                        *_filter_parameters(resource, mine)],
                         "description": GRAMMAR}
            document["responses"] |= {"200": _list_response(t), "406": PROBLEM}
        case "read":
            document["responses"] |= {"200": ok_row, "304": {"description": "Not modified (If-None-Match)"},
                                      "404": PROBLEM}
        case "replace":
            document["requestBody"] = _body({"$ref": f"#/components/schemas/{t}_replace"})
            document["responses"] |= {"200": ok_row, "201": ok_row, "409": PROBLEM, "412": PROBLEM}
        case "update":
            document["requestBody"] = _body({"$ref": f"#/components/schemas/{t}_patch"})
            document["responses"] |= {"200": ok_row, "404": PROBLEM, "409": PROBLEM, "412": PROBLEM}
        case "delete":
            document["responses"] |= {"204": {"description": "Deleted"}, "404": PROBLEM, "409": PROBLEM,
                                      "412": PROBLEM}
        case "related_list" if related is not None:
            document |= {"parameters": [key_parameter(resource, mine), *READ_PARAMETERS[:-1],
                                        *_shape_parameters(related, related_embeddable)], "description": GRAMMAR}
            document["responses"] |= {"200": _list_response(related.name), "404": PROBLEM}
        case "related_replace" | "related_add" if related is not None:
            document["parameters"] = [key_parameter(resource, mine)]
            document["requestBody"] = _body(_keys_schema(related, examples[related.name]))
            document["responses"] |= {"200": {"description": "The linked keys"}, "404": PROBLEM}
        case "related_remove" if related is not None:
            child_key = key_parameter(related, examples[related.name]) | {"name": "child_id"}
            document["parameters"] = [key_parameter(resource, mine), child_key]
            document["responses"] |= {"204": {"description": "Unlinked"}, "404": PROBLEM}
    if op.kind in ("read", "replace", "update", "delete"):
        document["parameters"] = [key_parameter(resource, mine)]
    return document


ETAG = {"ETag": {"description": "The row's version, for If-Match", "schema": {"type": "string",
                                                                               "example": '"0f1e2d"'}}}


def _list_response(t: str) -> dict[str, Any]:
    listed = _json_response("One page of rows and navigation links", f"{t}_list")
    listed["content"]["text/csv"] = {"schema": {"type": "string", "example": "id,name\r\n1,Ann\r\n"}}
    return listed


def _example_row(examples: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in examples.items() if value is not None}


def _keys_schema(related: ResourceSpec, examples: dict[str, Any]) -> dict[str, Any]:
    """An array of keys of `related`: values of its key field, or for a composite key objects of its key
    fields (`"a,b"` text is accepted too)."""
    fields = related.key_fields
    if len(fields) == 1:
        item = {k: v for k, v in value_schema(fields[0]).items() if k not in ("description", "example")}
        example_ = examples.get(fields[0].name)
    else:
        item = {"type": "object", "required": list(related.primary_key), "additionalProperties": False,
                "properties": {f.name: {k: v for k, v in value_schema(f).items() if k != "description"}
                               for f in fields}}
        example_ = {f.name: examples.get(f.name) for f in fields}
    schema: dict[str, Any] = {"type": "array", "items": item, "description": f"Keys of {related.name} rows"}
    if example_ is not None and (not isinstance(example_, dict) or None not in example_.values()):
        schema["example"] = [example_]
    return schema


def _shape_parameters(resource: ResourceSpec, embeddable: Iterable[str]) -> list[dict[str, Any]]:
    """`order` and `select`, with patterns naming exactly the fields (and relationships) they may name."""
    names = "|".join(re.escape(f.name) for f in filterable(resource))
    order_item = rf"(?:{names})(?:\.(?:asc|desc))?(?:\.(?:nullsfirst|nullslast))?"
    every = "|".join(re.escape(f.name) for f in resource.fields)
    embeds = "|".join(re.escape(name) for name in embeddable)
    select_item = rf"(?:\*|{every}|(?:{embeds})\((?:\*)?\))" if embeds else rf"(?:\*|{every})"
    example = ",".join(f"{name}.asc" for name in resource.primary_key)
    return [
        {"name": "order", "in": "query", "required": False,
         "description": "field.asc|desc[.nullsfirst|.nullslast], comma-separated; ties go by primary key",
         "schema": {"type": "string", "pattern": rf"^(?:{order_item}(?:,{order_item})*)?$", "example": example}},
        {"name": "select", "in": "query", "required": False,
         "description": "Fields to return, and related rows to embed: `id,name,child(*)`",
         "schema": {"type": "string", "pattern": rf"^(?:{select_item}(?:,{select_item})*)?$", "example": "*"}},
    ]


def _json_response(description: str, schema_name: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}
    if headers:
        response["headers"] = headers
    return response


def _body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": True, "content": {"application/json": media}}


def filterable(resource: ResourceSpec) -> list[FieldSpec]:
    """Fields an exact-match query can compare (JSON-like values cannot be compared portably)."""
    return [f for f in resource.fields if f.type not in JSON_TYPES and (f.searchable or not f.protected)]


def _filter_parameters(resource: ResourceSpec, examples: dict[str, Any]) -> list[dict[str, Any]]:
    """One parameter per comparable field: a bare value (exact match) or `op.value` (see GRAMMAR), with a
    pattern of exactly what the grammar accepts for the field's type. The example is the bare example value,
    so Swagger UI's query finds the example row."""
    parameters = []
    for f in filterable(resource):
        if f.name in RESERVED:
            continue
        schema: dict[str, Any] = {"type": "string"}
        form = TEXT_FORMS.get(f.type)
        if form is not None:
            schema["pattern"] = _filter_pattern(form, boolean=f.type == "boolean", protected=f.protected)
        if examples.get(f.name) is not None:
            schema["example"] = key_text(examples[f.name])
        parameters.append({"name": f.name, "in": "query", "required": False, "schema": schema,
                           "description": f"{f.name} ({f.type}): a value (exact match) or op.value, e.g. gte.x"})
    return parameters


def _filter_pattern(form: str, *, boolean: bool, protected: bool = False) -> str:
    """What the grammar accepts for a field; a protected (searchable) one: eq, in and is.null only."""
    value = f"(?:{form})"
    if protected:
        return rf"^(?:(?:eq\.)?{value}|in\.\((?:{value}(?:,{value})*)?\)|(?:not\.)?is\.null)$"
    compared = rf"(?:(?:not\.)?(?:eq|neq|gt|gte|lt|lte)\.)?{value}"
    listed = rf"(?:not\.)?in\.\((?:{value}(?:,{value})*)?\)"
    is_ = r"(?:not\.)?is\.(?:null|true|false|unknown)" if boolean else r"(?:not\.)?is\.(?:null|unknown)"
    return f"^(?:{compared}|{listed}|{is_})$"


def _resource_schemas(resource: ResourceSpec, examples: dict[str, Any],
                      relations: Mapping[str, Relation] | None = None) -> dict[str, Any]:
    """`<t>` is the row as served (responses); `<t>_selected` a row of a list, which `select=` may narrow and
    embeds may widen; the others what requests send."""
    t = resource.name
    selected = row_schema(resource, examples, required=None, nullable_all=False)
    for name, relation in (relations or {}).items():
        related = {"type": "object", "additionalProperties": True}
        selected["properties"][name] = ({"type": "array", "items": related, "example": []}
                                        if relation.cardinality == "many" else {**related, "nullable": True,
                                                                                 "example": None})
    replace_required = [n for n in input_required(resource) if n not in resource.primary_key]
    row_example = {name: value for name, value in examples.items() if value is not None}
    return {
        t: row_schema(resource, examples, required=output_required(resource), nullable_all=False),
        f"{t}_selected": selected,
        f"{t}_input": row_schema(resource, examples, required=input_required(resource), nullable_all=False),
        f"{t}_replace": row_schema(resource, examples, required=replace_required, nullable_all=False),
        f"{t}_patch": row_schema(resource, examples, required=None, nullable_all=False),
        f"{t}_filter": row_schema(replace(resource, fields=tuple(filterable(resource))), examples, required=None,
                                  nullable_all=True),
        f"{t}_list": {
            "type": "object",
            "required": [t, "links"],
            "properties": {
                t: {"type": "array", "items": {"$ref": f"#/components/schemas/{t}_selected"},
                    "example": [row_example]},
                "links": {"type": "array", "items": {"$ref": "#/components/schemas/Links"},
                          "example": [{"rel": "self", "href": f"/{t}?offset=0&limit=100"}]},
            },
        },
    }


def _shared_schemas() -> dict[str, Any]:
    return {
        "Links": {"type": "object", "required": ["rel", "href"], "properties": {
            "rel": {"type": "string", "enum": ["self", "first", "prev", "next"], "example": "self"},
            "href": {"type": "string", "example": "/people?offset=0&limit=100"},
        }},
        "CreatedMany": {"type": "object", "required": ["message", "ids"], "properties": {
            "message": {"type": "string", "example": "Successfully added 2 resources."},
            "ids": {"type": "array", "items": {}, "example": [1, 2],
                    "description": "The new rows' keys, in the order sent"},
        }},
        "Created": {"type": "object", "required": ["message", "id"], "properties": {
            "message": {"type": "string", "example": "Successfully added new resource."},
            "id": {"description": "The new row's primary key (an object of key fields when composite)", "example": 1},
        }},
        "Problem": {"type": "object", "properties": {
            "type": {"type": "string", "example": "about:blank"}, "title": {"type": "string", "example": "Bad Request"},
            "status": {"type": "integer", "example": 400},
            "detail": {"type": "string", "example": "The request body does not match the schema"},
            "errors": {"type": "array", "example": [{"pointer": "/name", "message": "'name' is required"}],
                       "items": {"type": "object", "properties": {
                           "pointer": {"type": "string", "example": "/name"},
                           "message": {"type": "string", "example": "'name' is required"}}}},
        }},
    }  # fmt: skip


def _shared_parameters(default_limit: int, max_limit: int) -> dict[str, Any]:
    return {
        "offset": {"name": "offset", "in": "query", "required": False, "description": "Rows to skip",
                   "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1,
                              "default": 0, "example": 0}},
        "limit": {"name": "limit", "in": "query", "required": False,
                  "description": f"Rows per page (1 to {max_limit})",
                  "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit,
                             "example": min(default_limit, max_limit)}},
        "Prefer": {"name": "Prefer", "in": "header", "required": False,
                   "description": "`count=exact`, `count=planned` or `count=estimated` adds the total",
                   "schema": {"type": "string", "example": "count=exact"}},
        "PreferResolution": {"name": "Prefer", "in": "header", "required": False,
                             "description": "`resolution=merge-duplicates` updates rows whose key exists",
                             "schema": {"type": "string", "example": "return=minimal"}},
    }  # fmt: skip
