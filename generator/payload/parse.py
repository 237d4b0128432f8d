"""The payload pipeline: structure, table schemas, relationships, whitelist → a frozen `Generation`.

`ignore_validation` (by its presence alone, as in the reference) skips the checks a payload could live
without: the OpenAPI 3.0 validation of `apiSpec`, frictionless' Table Schema checks, and whitelist paths
that name no table (these become warnings and are not served). Checks the build needs always run: the
payload's structure, field types, keys and references. Every issue carries a JSON pointer."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import date, datetime, time
from typing import Any

from generator.errors import InvalidPayload, Issue
from generator.payload import schema
from generator.payload.specs import (
    JSON_TYPES,
    FieldSpec,
    ForeignKeySpec,
    Generation,
    ManyToManySpec,
    ResourceSpec,
)
from generator.payload.whitelist import parse_whitelist

RESERVED_NAMES = frozenset({"generator", "tableschema", "swagger", "health", "ui", "admin", "openapi.json"})
RESERVED_PREFIX = "drg_"
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
RANGE_TYPES = frozenset({"integer", "number", "year", "date", "time", "datetime", "yearmonth"})


def parse_payload(payload: Any) -> Generation:
    """Validate a decoded `POST /generator` body and return its specs, or raise `InvalidPayload`.

    Every problem is reported at once: when the structure is already wrong, the semantic checks still run
    as far as the malformed parts let them."""
    if not isinstance(payload, dict):
        raise InvalidPayload([Issue("", "the payload must be a JSON object")])
    structural = list(schema.issues(schema.payload_validator(), payload))
    try:
        generation, found = _parse(payload)
    except Exception:
        if not structural:
            raise  # well-formed input that we failed on is our bug, not the client's
        generation, found = None, []
    found = structural + [issue for issue in found if issue not in structural]
    if found or generation is None:
        raise InvalidPayload(found)
    return generation


def _parse(payload: dict[str, Any]) -> tuple[Generation | None, list[Issue]]:
    strict = "ignore_validation" not in payload
    key = "data_resource_schema" if "data_resource_schema" in payload else "data_catalog"
    resource_doc, base = payload[key], f"/{key}"
    entries = resource_doc["data"]["dataDictionary"]

    resources, found = _resources(entries, f"{base}/data/dataDictionary")
    names = {r.name for r in resources}
    found += _foreign_key_issues(resources, entries, f"{base}/data/dataDictionary")
    keys = {r.name: r.primary_key for r in resources}
    pairs, pair_issues = _many_to_many(resource_doc["data"].get("relationships", {}), keys, f"{base}/data")
    found += pair_issues
    api_spec = (resource_doc.get("api") or {}).get("apiSpec") or {}
    operations, path_issues = parse_whitelist(api_spec.get("paths", {}), names, f"{base}/api/apiSpec/paths")
    warnings: list[str] = []
    if strict:
        found += path_issues + _frictionless_issues(entries, f"{base}/data/dataDictionary")
        found += _openapi_issues(api_spec, f"{base}/api/apiSpec")
    else:
        warnings += [f"{i.pointer}: {i.message} (not served)" for i in path_issues]
    if found:
        return None, found
    warnings += [f"{op.path} {op.method.upper()}: relationship routes are not served yet (planned)"
                 for op in operations if op.kind == "related"]  # fmt: skip
    info = api_spec.get("info") if isinstance(api_spec.get("info"), dict) else {}
    return Generation(
        resources=tuple(resources),
        many_to_many=tuple(pairs),
        operations=tuple(op for op in operations if op.kind != "related"),
        title=str(info.get("title") or resource_doc.get("name") or "Data Resource API"),
        description=str(info.get("description") or resource_doc.get("description") or ""),
        version=str(info.get("version") or "1.0.0"),
        digest=digest(payload),
        touch_database=payload.get("touch_database", True),
        warnings=tuple(warnings),
        payload=payload,
    ), []


def warm_up() -> None:
    """Import frictionless and compile the validators now, so the first generation does not pay for it."""
    import frictionless  # noqa: F401

    schema.payload_validator()
    schema.openapi_validator()


def digest(payload: dict[str, Any]) -> str:
    """Same payload, same digest: key order and whitespace do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _names(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _resources(entries: list[dict[str, Any]], base: str) -> tuple[list[ResourceSpec], list[Issue]]:
    resources: list[ResourceSpec] = []
    found: list[Issue] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{base}/{index}"
        name = entry["name"].lower()
        if name in seen:
            found.append(Issue(f"{where}/name", f"table {name!r} is declared twice (names are case-insensitive)"))
        if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
            found.append(Issue(f"{where}/name", f"{name!r} is reserved for the service's own routes or tables"))
        seen.add(name)
        resource, resource_issues = _resource(name, entry, f"{where}/tableSchema")
        found += resource_issues
        if resource is not None:
            resources.append(resource)
    return resources, found


def resource_from_table_schema(name: str, table_schema: dict[str, Any], where: str = "") -> ResourceSpec:
    """One Table Schema on its own (the admin helper routes); raises `InvalidPayload`."""
    found = list(schema.issues(schema.table_schema_validator(), table_schema, prefix=where))
    if found:
        raise InvalidPayload(found)
    resource, found = _resource(name.lower(), {"tableSchema": table_schema}, where)
    if found or resource is None:
        raise InvalidPayload(found)
    return resource


def _resource(name: str, entry: dict[str, Any], where: str) -> tuple[ResourceSpec | None, list[Issue]]:
    table = entry["tableSchema"]
    fields: list[FieldSpec] = []
    found: list[Issue] = []
    seen: set[str] = set()
    for index, raw in enumerate(table["fields"]):
        spec, field_issues = _field(raw, f"{where}/fields/{index}")
        found += field_issues
        if spec.name.lower() in seen:
            found.append(Issue(f"{where}/fields/{index}/name", f"field {spec.name!r} is declared twice"))
        seen.add(spec.name.lower())
        fields.append(spec)
    declared = {f.name: f for f in fields}
    if "primaryKey" not in table:
        found.append(Issue(where, f"table {name!r} has no primaryKey; declare one (any field name and type)"))
        return None, found
    key = _names(table["primaryKey"])
    for part in key:
        if part not in declared:
            found.append(Issue(f"{where}/primaryKey", f"primary key field {part!r} is not a declared field"))
        elif declared[part].type in JSON_TYPES:
            found.append(Issue(f"{where}/primaryKey", f"{part!r} has type {declared[part].type}, "
                                                      "which cannot be a primary key"))
    if len(set(key)) != len(key):
        found.append(Issue(f"{where}/primaryKey", "primary key names a field twice"))
    foreign_keys = tuple(
        ForeignKeySpec(
            fields=_names(fk["fields"]),
            resource=(fk["reference"].get("resource") or name).lower(),
            reference_fields=_names(fk["reference"]["fields"]),
        )
        for fk in table.get("foreignKeys", [])
    )
    resource = ResourceSpec(name=name, fields=tuple(fields), primary_key=key, foreign_keys=foreign_keys,
                            title=entry.get("title"), description=entry.get("description"))
    return resource, found


def _field(raw: dict[str, Any], where: str) -> tuple[FieldSpec, list[Issue]]:
    constraints = raw.get("constraints") or {}
    spec = FieldSpec(
        name=raw["name"],
        type=raw.get("type", "string"),
        format=raw.get("format") if raw.get("format") not in (None, "default") else None,
        title=raw.get("title"),
        description=raw.get("description"),
        required=bool(constraints.get("required", raw.get("required", False))),
        unique=bool(constraints.get("unique", False)),
        enum=tuple(constraints["enum"]) if "enum" in constraints else None,
        min_length=constraints.get("minLength"),
        max_length=constraints.get("maxLength"),
        minimum=constraints.get("minimum"),
        maximum=constraints.get("maximum"),
        pattern=constraints.get("pattern"),
    )
    found: list[Issue] = []
    if spec.name.startswith("$"):
        found.append(Issue(f"{where}/name", f"field {spec.name!r}: names starting with '$' are reserved by "
                                            "JSON Schema and OpenAPI ($ref, $schema ...)"))
    if spec.pattern is not None:
        try:
            re.compile(spec.pattern)
        except re.error as exc:
            found.append(Issue(f"{where}/constraints/pattern", f"not a valid regular expression: {exc}"))
    for bound in ("minimum", "maximum"):
        value = getattr(spec, bound)
        if value is not None and spec.type not in RANGE_TYPES:
            found.append(Issue(f"{where}/constraints/{bound}", f"{bound} does not apply to type {spec.type}"))
        elif isinstance(value, str) and spec.type in ("integer", "number", "year"):
            found.append(Issue(f"{where}/constraints/{bound}", f"{bound} of a {spec.type} must be a number"))
        elif value is not None and spec.type in TEMPORAL_PARSERS and not _parses(spec.type, value):
            found.append(Issue(f"{where}/constraints/{bound}", f"{bound} {value!r} is not a valid {spec.type}"))
    return spec, found


TEMPORAL_PARSERS = {"date": date.fromisoformat, "time": time.fromisoformat, "datetime": datetime.fromisoformat}


def _parses(type_: str, value: Any) -> bool:
    try:
        TEMPORAL_PARSERS[type_](str(value))
    except ValueError:
        return False
    return True


def _foreign_key_issues(resources: list[ResourceSpec], entries: list[dict[str, Any]], base: str) -> list[Issue]:
    by_name = {r.name: r for r in resources}
    found: list[Issue] = []
    for index, entry in enumerate(entries):
        resource = by_name.get(entry["name"].lower())
        for fk_index, fk in enumerate(resource.foreign_keys if resource else ()):
            where = f"{base}/{index}/tableSchema/foreignKeys/{fk_index}"
            declared = {f.name for f in resource.fields}
            missing = [f for f in fk.fields if f not in declared]
            if missing:
                found.append(Issue(f"{where}/fields", f"foreign key field {', '.join(map(repr, missing))} "
                                                      f"is not a declared field of {resource.name!r}"))
            target = by_name.get(fk.resource)
            if target is None:
                found.append(Issue(f"{where}/reference/resource",
                                   f"foreign key references table {fk.resource!r}, which is not declared"))
                continue
            found += _reference_issues(fk, target, where, {f.name: f.type for f in resource.fields})
    return found


def _reference_issues(fk: ForeignKeySpec, target: ResourceSpec, where: str,
                      types: dict[str, str]) -> list[Issue]:
    declared = {f.name for f in target.fields}
    missing = [f for f in fk.reference_fields if f not in declared]
    if missing:
        return [Issue(f"{where}/reference/fields", f"{', '.join(map(repr, missing))} is not a declared field "
                                                   f"of {target.name!r}")]
    if len(fk.reference_fields) != len(fk.fields):
        return [Issue(f"{where}/reference/fields", "a foreign key must name as many fields as it references")]
    for local, remote in zip(fk.fields, fk.reference_fields, strict=True):
        mine, theirs = types.get(local), target.field(remote).type
        if mine is not None and mine != theirs:
            return [Issue(f"{where}/fields", f"{local!r} is {mine} but references {target.name}.{remote}, "
                                             f"which is {theirs}; the types must match")]
    unique = fk.reference_fields == target.primary_key or (
        len(fk.reference_fields) == 1 and target.field(fk.reference_fields[0]).unique
    )
    if not unique:
        return [Issue(f"{where}/reference/fields", f"must be the primary key of {target.name!r} or a unique field")]
    return []


def _many_to_many(
    relationships: dict[str, Any], keys: dict[str, tuple[str, ...]], base: str
) -> tuple[list[ManyToManySpec], list[Issue]]:
    """Pairs of declared tables; the association table and its columns (`<table>_<key>`, and
    `related_<table>_<key>` for the second side of a self-pair) must fit PostgreSQL's identifiers."""
    names = set(keys)
    pairs: list[ManyToManySpec] = []
    found: list[Issue] = []
    for index, pair in enumerate(relationships.get("manyToMany", [])):
        left, right = (p.lower() for p in pair)
        unknown = [p for p in (left, right) if p not in names]
        if unknown:
            found.append(Issue(f"{base}/relationships/manyToMany/{index}",
                               f"many-to-many pair names undeclared table {', '.join(map(repr, unknown))}"))
            continue
        spec = ManyToManySpec(left, right)
        second = f"related_{right}" if left == right else right
        columns = [f"{left}_{k}" for k in keys[left]] + [f"{second}_{k}" for k in keys[right]]
        if len(spec.table_name) > MAX_IDENTIFIER or any(len(c) > MAX_IDENTIFIER for c in columns):
            found.append(Issue(f"{base}/relationships/manyToMany/{index}",
                               f"the association table {spec.table_name!r} or one of its columns would be longer than "
                               f"{MAX_IDENTIFIER} characters, which PostgreSQL silently truncates; use shorter names"))
        elif spec.table_name in names:
            found.append(Issue(f"{base}/relationships/manyToMany/{index}",
                               f"the association table {spec.table_name!r} clashes with a declared table"))
        elif spec not in pairs and ManyToManySpec(right, left) not in pairs:
            pairs.append(spec)
    return pairs, found


def _frictionless_issues(entries: list[dict[str, Any]], base: str) -> list[Issue]:
    from frictionless import Schema  # imported late: it is slow to import and only strict validation needs it

    found: list[Issue] = []
    for index, entry in enumerate(entries):
        report = Schema.validate_descriptor(_table_schema_v1(entry["tableSchema"]))
        found += [Issue(f"{base}/{index}/tableSchema", f"Table Schema: {note}")
                  for (note,) in report.flatten(["note"])]  # fmt: skip
    return found


def _table_schema_v1(table: dict[str, Any]) -> dict[str, Any]:
    """The reference's helper bodies put `required` on the field; Table Schema v1 wants it in constraints."""
    if not any(isinstance(f, dict) and "required" in f for f in table["fields"]):
        return table
    fields = []
    for field in table["fields"]:
        field = dict(field)
        if "required" in field:
            field["constraints"] = {"required": field.pop("required"), **(field.get("constraints") or {})}
        fields.append(field)
    return {**table, "fields": fields}


def _openapi_issues(api_spec: dict[str, Any], where: str) -> list[Issue]:
    """Validate what is there: bare `{}` operations and a missing `info` are filled in before checking."""
    if not api_spec:
        return []
    document = copy.deepcopy(api_spec)
    document.setdefault("openapi", "3.0.0")
    document.setdefault("info", {"title": "whitelist", "version": "1.0.0"})
    for item in (document.get("paths") or {}).values():
        for method, operation in (item.items() if isinstance(item, dict) else ()):
            if isinstance(operation, dict) and method in ("get", "put", "post", "delete", "patch"):
                operation.setdefault("responses", {"default": {"description": "generated"}})
    return list(schema.issues(schema.openapi_validator(), document, prefix=where))
