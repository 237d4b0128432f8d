"""The served OpenAPI 3.0 document, generated from the specs.

Only whitelisted operations appear. The payload's summaries and descriptions are kept; everything else
(schemas, parameters, responses) is generated so the document is always complete and valid. Literal paths
(`/t/query`) come before templated ones (`/t/{id}`) so routing never mistakes `query` for a key.

Every property and parameter carries an `example` the service accepts, and the key parameter's example is the
key of the row the body examples create: Swagger UI's "Try it out" sends examples unedited, and without them
it invents values the service refuses (the int64 maximum, rounded by JavaScript; 200-digit durations)."""

from __future__ import annotations

import copy
import math
import random
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

from rstr.xeger import Xeger

from generator.api.values import CONVERTERS
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

# -- examples: Swagger UI's "Try it out" sends these unedited, so each must be a value the service accepts ----

JS_SAFE = 2**53 - 1  # larger integers are rounded by JavaScript before Swagger UI sends them
BASE_EXAMPLES: dict[str, Any] = {
    "string": "example", "integer": 1, "number": 1.5, "boolean": True, "year": 2024,
    "date": "2024-05-17", "time": "10:11:12", "datetime": "2024-05-17T10:11:12Z", "yearmonth": "2024-05",
    "duration": "P1Y2M3DT4H", "object": {"key": "value"}, "array": ["value"],
    "geojson": {"type": "Point", "coordinates": [13.4, 52.52]}, "any": {"key": "value"},
}  # fmt: skip
GEOPOINT_EXAMPLES: dict[str | None, Any] = {None: "13.4, 52.52", "array": [13.4, 52.52],
                                            "object": {"lon": 13.4, "lat": 52.52}}  # fmt: skip
STRING_FORMAT_EXAMPLES = {"uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "email": "user@example.com",
                          "uri": "https://example.com/", "binary": "ZXhhbXBsZQ=="}  # fmt: skip
UNADDRESSABLE_KEYS = frozenset({"", ".", "..", "query"})
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
PATTERN_ATTEMPTS, PATTERN_CHOICES, PATTERN_REPEATS = 64, 8, (3, 12, 100)
Examples = dict[str, dict[str, Any]]  # resource name → field name → example


def operation_id(op: OperationSpec) -> str:
    return f"{op.resource}.{op.kind}.{op.method}"


def example(field: FieldSpec, *, key_parts: int = 0) -> Any:
    """A value the service accepts for `field`, or None when none was found (a pattern rstr cannot draw).

    Without one Swagger UI invents values from the schema (int64 maximum, 200-digit durations) that the service
    then refuses. `key_parts` counts the key fields when `field` is one of them: a key must also fit in a URL."""
    if field.enum:
        return field.enum[0]
    match field.type:
        case "string":
            return _string_example(field, key_parts)
        case "integer" | "number" | "year":
            return _numeric_example(field)
        case "date" | "time" | "datetime":
            return _temporal_example(field)
        case "geopoint":
            return copy.deepcopy(GEOPOINT_EXAMPLES.get(field.format, GEOPOINT_EXAMPLES[None]))
    return copy.deepcopy(BASE_EXAMPLES.get(field.type, BASE_EXAMPLES["any"]))


def _string_example(field: FieldSpec, key_parts: int) -> str | None:
    if field.pattern is not None:
        return pattern_example(field.pattern, field.min_length, field.max_length, key_parts)
    text = STRING_FORMAT_EXAMPLES.get(field.format or "", BASE_EXAMPLES["string"])
    if field.min_length is not None and len(text) < field.min_length:
        text += "x" * (field.min_length - len(text))
    return text if field.max_length is None else text[: field.max_length]


def _numeric_example(field: FieldSpec) -> int | float:
    """The base example moved into the field's range, and into JavaScript's exact integers when the range
    allows: Swagger UI parses the document in JavaScript and would send a rounded, out-of-range number."""
    integral = field.type != "number"
    low = INT64["minimum"] if field.minimum is None else (math.ceil(field.minimum) if integral else field.minimum)
    high = INT64["maximum"] if field.maximum is None else (math.floor(field.maximum) if integral else field.maximum)
    if field.type == "year":
        low, high = max(low, -9999), min(high, 9999)
    if max(low, -JS_SAFE) <= min(high, JS_SAFE):
        low, high = max(low, -JS_SAFE), min(high, JS_SAFE)
    return min(max(BASE_EXAMPLES[field.type], low), high)


def _temporal_example(field: FieldSpec) -> str:
    """The base example, or the bound it falls outside of (a bound is a value the converter accepts)."""
    value = BASE_EXAMPLES[field.type]
    if field.minimum is not None and not _in_order(field.type, field.minimum, value):
        value = str(field.minimum)
    if field.maximum is not None and not _in_order(field.type, value, field.maximum):
        value = str(field.maximum)
    return value


def _in_order(type_: str, low: Any, high: Any) -> bool:
    parse = CONVERTERS[type_]
    try:
        return bool(parse(str(low)) <= parse(str(high)))
    except (TypeError, ValueError):  # e.g. an offset-aware example against a naive bound: use the bound
        return False


class ShortXeger(Xeger):
    """rstr's xeger with repeats stopped `extra` past their minimum: its own cap of 100 repeats per `+` or `*`
    rarely meets a maxLength, and short examples read best."""

    def __init__(self, seed: int, extra: int) -> None:
        super().__init__(random.Random(seed))  # a fixed seed: every build and worker serves the same document
        self.extra = extra

    def _handle_repeat(self, start_range: int, end_range: int, value: Any) -> str:
        return str(super()._handle_repeat(start_range, min(end_range, start_range + self.extra), value))


@lru_cache(maxsize=4096)
def pattern_example(pattern: str, min_length: int | None, max_length: int | None, key_parts: int) -> str | None:
    """A short value the whole of which matches `pattern` and that meets the length limits, or None.

    Draws random matches with ever longer repeats until some fit, and keeps the shortest fitting draw."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return None
    for extra in PATTERN_REPEATS:
        draws = ShortXeger(seed=0, extra=extra)
        fitting: list[str] = []
        for _ in range(PATTERN_ATTEMPTS):
            try:
                candidate = draws.xeger(pattern)
            except Exception:  # noqa: BLE001 - a construct xeger cannot draw must not fail a generation
                return None
            if _fits_text(candidate, compiled, min_length, max_length, key_parts):
                fitting.append(candidate)
                if len(fitting) == PATTERN_CHOICES:
                    break
        if fitting:
            return min(fitting, key=len)
    return None


def _fits_text(text: str, compiled: re.Pattern[str] | None, min_length: int | None, max_length: int | None,
               key_parts: int) -> bool:
    return ((compiled is None or compiled.fullmatch(text) is not None) and not CONTROL_CHARACTERS.search(text)
            and (min_length is None or len(text) >= min_length) and (max_length is None or len(text) <= max_length)
            and (not key_parts or _addressable(text, composite=key_parts > 1)))  # fmt: skip


def _addressable(text: str, *, composite: bool) -> bool:
    """A key a URL can reach (the rule of ResourceHandlers._check_addressable)."""
    return "/" not in text and not (composite and "," in text) and text not in UNADDRESSABLE_KEYS


def resource_examples(generation: Generation) -> Examples:
    """Every field's example, by resource. A foreign key takes the example of the field it references (when
    its own constraints allow), so creating the referenced row from its example first satisfies it."""
    examples = {r.name: {f.name: example(f, key_parts=len(r.primary_key) if f.name in r.primary_key else 0)
                         for f in r.fields} for r in generation.resources}  # fmt: skip
    for _ in generation.resources:  # a chain of references settles in at most one round per table
        if not _adopt_references(generation.resources, examples):
            break
    return examples


def _adopt_references(resources: tuple[ResourceSpec, ...], examples: Examples) -> bool:
    changed = False
    for resource in resources:
        mine = examples[resource.name]
        for fk in resource.foreign_keys:
            theirs = examples.get(fk.resource, {})
            for local, remote in zip(fk.fields, fk.reference_fields, strict=False):
                value = theirs.get(remote)
                if local in mine and value is not None and value != mine[local] and _accepts(resource, local, value):
                    mine[local], changed = value, True
    return changed


def _accepts(resource: ResourceSpec, name: str, value: Any) -> bool:
    """Whether `value` meets the declared constraints of field `name` (those its own example was made to meet)."""
    field = resource.field(name)
    if field.enum is not None:
        return value in field.enum
    if field.type == "string" and isinstance(value, str):
        compiled = re.compile(field.pattern) if field.pattern is not None else None
        key_parts = len(resource.primary_key) if name in resource.primary_key else 0
        return _fits_text(value, compiled, field.min_length, field.max_length, key_parts)
    if field.type in ("integer", "number", "year") and isinstance(value, int | float):
        return (field.minimum is None or value >= field.minimum) and (field.maximum is None or value <= field.maximum)
    return True


def key_text(value: Any) -> str:
    """A key value as it is written in a URL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
        case "datetime":  # the pattern, because the date-time format is only checked if rfc3339-validator is
            return {"type": "string", "format": "date-time", "pattern": TEXT_PATTERNS["datetime"]}  # installed
        case "date" | "time" | "yearmonth" | "duration":
            return {"type": "string", "format": field.type, "pattern": TEXT_PATTERNS[field.type]}
        case "geopoint":
            return _geopoint_schema(field.format)
        case "geojson":
            return {"type": "object", "required": ["type"], "additionalProperties": True,
                    "properties": {"type": {"type": "string", "example": "Point"}}}
    return {}  # any


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


def build_document(generation: Generation, *, default_limit: int, max_limit: int) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = _shared_schemas()
    examples = resource_examples(generation)
    for resource in generation.resources:
        operations = generation.operations_for(resource.name)
        if not operations:
            continue
        schemas.update(_resource_schemas(resource, examples[resource.name]))
        for op in operations:
            path = served_path(op)
            paths.setdefault(path, {})[op.method] = _operation(op, resource, examples[resource.name])
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


def _operation(op: OperationSpec, resource: ResourceSpec, examples: dict[str, Any]) -> dict[str, Any]:
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
            document["parameters"] = page + _filter_parameters(resource, examples)
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
        document["parameters"] = [key_parameter(resource, examples)]
    return document


def _json_response(description: str, schema_name: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def filterable(resource: ResourceSpec) -> list[FieldSpec]:
    """Fields an exact-match query can compare (JSON-like values cannot be compared portably)."""
    return [f for f in resource.fields if f.type not in JSON_TYPES]


def _filter_parameters(resource: ResourceSpec, examples: dict[str, Any]) -> list[dict[str, Any]]:
    scalar = [f for f in filterable(resource) if f.name not in PAGE_NAMES]  # those filter through POST
    return [{"name": f.name, "in": "query", "required": False, "description": f"Rows whose {f.name} equals this",
             "schema": {k: v for k, v in value_schema(f, examples.get(f.name)).items()
                        if k not in ("description", "enum")}}
            for f in scalar]  # fmt: skip


def _resource_schemas(resource: ResourceSpec, examples: dict[str, Any]) -> dict[str, Any]:
    """`<t>` is the row as served (responses), the others what requests send."""
    t = resource.name
    replace_required = [n for n in input_required(resource) if n not in resource.primary_key]
    row_example = {name: value for name, value in examples.items() if value is not None}
    return {
        t: row_schema(resource, examples, required=output_required(resource), nullable_all=False),
        f"{t}_input": row_schema(resource, examples, required=input_required(resource), nullable_all=False),
        f"{t}_replace": row_schema(resource, examples, required=replace_required, nullable_all=False),
        f"{t}_patch": row_schema(resource, examples, required=None, nullable_all=False),
        f"{t}_filter": row_schema(replace(resource, fields=tuple(filterable(resource))), examples, required=None,
                                  nullable_all=True),
        f"{t}_list": {
            "type": "object",
            "required": [t, "links"],
            "properties": {
                t: {"type": "array", "items": {"$ref": f"#/components/schemas/{t}"}, "example": [row_example]},
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


def _page_parameters(default_limit: int, max_limit: int) -> dict[str, Any]:
    return {
        "offset": {"name": "offset", "in": "query", "required": False, "description": "Rows to skip",
                   "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1,
                              "default": 0, "example": 0}},
        "limit": {"name": "limit", "in": "query", "required": False,
                  "description": f"Rows per page (1 to {max_limit})",
                  "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit,
                             "example": min(default_limit, max_limit)}},
    }  # fmt: skip
