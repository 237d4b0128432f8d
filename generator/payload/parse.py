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
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import re2

from generator.errors import InvalidPayload, Issue
from generator.literals import written
from generator.payload import schema
from generator.payload.specs import (
    ANY_FIELD,
    JSON_TYPES,
    EncryptionEntry,
    FieldSpec,
    ForeignKeySpec,
    Generation,
    ManyToManySpec,
    OperationSpec,
    ResourceSpec,
)
from generator.payload.whitelist import parse_whitelist
from generator.pointers import child, pointer

RESERVED_NAMES = frozenset({"generator", "tableschema", "swagger", "health", "ui", "admin", "openapi.json",
                            "rest", "audit", "data-products",  # the admin app's roots (not `teams`: see app.py)
                            "ready", "version", "metrics"})  # the operations probes (generator/operations)
RESERVED_PREFIX = "drg_"
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes: it truncates longer names silently
MAX_COLUMNS = 1600  # PostgreSQL's MaxHeapAttributeNumber ("tables can have at most 1600 columns"); SQLite: 2000
RANGE_TYPES = frozenset({"integer", "number", "year", "date", "time", "datetime", "yearmonth"})
NUMBER_TYPES = frozenset({"integer", "number", "year"})

# Table names the databases keep for themselves, refused on both backends alike so a payload stays portable.
# SQLite refuses `sqlite_*` ("object name reserved for internal use"). PostgreSQL names every relation of
# pg_catalog `pg_*`, and pg_catalog is searched before the search_path, so a table `pg_class` would be shadowed.
DATABASE_PREFIXES = {"sqlite_": "SQLite", "pg_": "PostgreSQL"}
# The views of PostgreSQL 15's information_schema (`SELECT table_name FROM information_schema.tables WHERE
# table_schema = 'information_schema'`). They are not on the default search_path, so they collide only where
# a tool or session puts information_schema on it; refused anyway so that no table reads like a catalog view.
INFORMATION_SCHEMA_NAMES = frozenset({
    "_pg_foreign_data_wrappers", "_pg_foreign_servers", "_pg_foreign_table_columns", "_pg_foreign_tables",
    "_pg_user_mappings", "administrable_role_authorizations", "applicable_roles", "attributes", "character_sets",
    "check_constraint_routine_usage", "check_constraints", "collation_character_set_applicability", "collations",
    "column_column_usage", "column_domain_usage", "column_options", "column_privileges", "column_udt_usage",
    "columns", "constraint_column_usage", "constraint_table_usage", "data_type_privileges", "domain_constraints",
    "domain_udt_usage", "domains", "element_types", "enabled_roles", "foreign_data_wrapper_options",
    "foreign_data_wrappers", "foreign_server_options", "foreign_servers", "foreign_table_options", "foreign_tables",
    "information_schema_catalog_name", "key_column_usage", "parameters", "referential_constraints",
    "role_column_grants", "role_routine_grants", "role_table_grants", "role_udt_grants", "role_usage_grants",
    "routine_column_usage", "routine_privileges", "routine_routine_usage", "routine_sequence_usage",
    "routine_table_usage", "routines", "schemata", "sequences", "sql_features", "sql_implementation_info",
    "sql_parts", "sql_sizing", "table_constraints", "table_privileges", "tables", "transforms",
    "triggered_update_columns", "triggers", "udt_privileges", "usage_privileges", "user_defined_types",
    "user_mapping_options", "user_mappings", "view_column_usage", "view_routine_usage", "view_table_usage", "views",
})  # fmt: skip

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the client, not written to stderr


def parse_payload(payload: Any) -> Generation:
    """Validate a decoded `POST /generator` body and return its specs, or raise `InvalidPayload`.

    Every problem is reported at once: when the structure is already wrong, the semantic checks still run
    as far as the malformed parts let them."""
    if not isinstance(payload, dict):
        raise InvalidPayload([Issue("", "the payload must be a JSON object")])
    structural = list(schema.issues(schema.payload_validator(), _for_structure(payload)))
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


def _for_structure(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as jsonschema should see it: a table wider than `MAX_COLUMNS` keeps one placeholder field.

    jsonschema costs about a third of a millisecond a field, so a 10,000-field table took seconds to check
    field by field; it is refused for its width anyway (`_width_issue`) and its fields are not checked."""
    view = dict(payload)
    for key in ("data_resource_schema", "data_catalog"):
        entries = _entries(payload.get(key))
        if any(_too_wide(entry) for entry in entries):
            data = {**payload[key]["data"], "dataDictionary": [_narrowed(entry) for entry in entries]}
            view[key] = {**payload[key], "data": data}
    return view


def _entries(resource_doc: Any) -> list[Any]:
    """`data.dataDictionary` when the structure holds, else nothing (jsonschema reports what is wrong)."""
    data = resource_doc.get("data") if isinstance(resource_doc, dict) else None
    entries = data.get("dataDictionary") if isinstance(data, dict) else None
    return entries if isinstance(entries, list) else []


def _too_wide(entry: Any) -> bool:
    table = entry.get("tableSchema") if isinstance(entry, dict) else None
    return isinstance(table, dict) and isinstance(table.get("fields"), list) and len(table["fields"]) > MAX_COLUMNS


def _narrowed(entry: Any) -> Any:
    if not _too_wide(entry):
        return entry
    return {**entry, "tableSchema": {**entry["tableSchema"], "fields": [{"name": "placeholder"}]}}


def _parse(payload: dict[str, Any]) -> tuple[Generation | None, list[Issue]]:
    strict = "ignore_validation" not in payload
    key = "data_resource_schema" if "data_resource_schema" in payload else "data_catalog"
    resource_doc, base = payload[key], f"/{key}"
    entries = resource_doc["data"]["dataDictionary"]

    resources, found = _resources(entries, f"{base}/data/dataDictionary")
    names = {entry["name"].lower() for entry in entries}  # a table that failed to build is still declared
    found += _foreign_key_issues(resources, entries, f"{base}/data/dataDictionary", names)
    keys = {r.name: r.primary_key for r in resources}
    pairs, pair_issues = _many_to_many(resource_doc["data"].get("relationships", {}), keys, f"{base}/data", names)
    found += pair_issues
    encryption, encryption_issues = _encryption(resource_doc["data"].get("encryptionSchema"),
                                                f"{base}/data/encryptionSchema", None)
    found += encryption_issues
    api_spec = (resource_doc.get("api") or {}).get("apiSpec") or {}
    operations, path_issues = parse_whitelist(api_spec.get("paths", {}), names, f"{base}/api/apiSpec/paths")
    operations, unpaired = _paired(operations, pairs, f"{base}/api/apiSpec/paths")
    path_issues += unpaired
    warnings: list[str] = []
    if strict:
        found += path_issues + _frictionless_issues(entries, f"{base}/data/dataDictionary")
        found += _openapi_issues(api_spec, f"{base}/api/apiSpec")
    else:
        warnings += [f"{i.pointer}: {i.message} (not served)" for i in path_issues]
    if found:
        return None, found
    info = api_spec.get("info") if isinstance(api_spec.get("info"), dict) else {}
    return Generation(
        resources=tuple(resources),
        many_to_many=tuple(pairs),
        operations=tuple(operations),
        title=str(info.get("title") or resource_doc.get("name") or "Data Resource API"),
        description=str(info.get("description") or resource_doc.get("description") or ""),
        version=str(info.get("version") or "1.0.0"),
        digest=digest(payload),
        touch_database=payload.get("touch_database", True),
        allow_destructive=payload.get("allow_destructive") is True,
        warnings=tuple(warnings),
        encryption=encryption,
        payload=payload,
    ), []


def _paired(operations: list[OperationSpec], pairs: list[ManyToManySpec],
            base: str) -> tuple[list[OperationSpec], list[Issue]]:
    """Relationship routes (`/<parent>/{id}/<child>`) need a many-to-many pair of those two tables."""
    linked = {(p.left, p.right) for p in pairs} | {(p.right, p.left) for p in pairs}
    kept: list[OperationSpec] = []
    found: list[Issue] = []
    for op in operations:
        if op.related is None or (op.resource, op.related) in linked:
            kept.append(op)
            continue
        issue = Issue(child(child(base, op.path), op.method), f"{op.path}: {op.resource} and {op.related} are not "
                      "a pair of data.relationships.manyToMany, so there are no links to serve")
        if issue not in found:
            found.append(issue)
    return kept, found


def warm_up() -> None:
    """Import frictionless and compile the validators now, so the first generation does not pay for it."""
    import frictionless  # noqa: F401

    schema.payload_validator()
    schema.openapi_validator()


DIGEST_IGNORES = ("allow_destructive",)  # says how to apply a payload, not what it declares


def digest(payload: dict[str, Any]) -> str:
    """Same payload, same digest: key order and whitespace do not matter, and neither does
    `allow_destructive` (a payload applied with it is the same payload posted again without it)."""
    if any(key in payload for key in DIGEST_IGNORES):
        payload = {k: v for k, v in payload.items() if k not in DIGEST_IGNORES}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _names(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _resources(entries: list[dict[str, Any]], base: str) -> tuple[list[ResourceSpec], list[Issue]]:
    resources: list[ResourceSpec] = []
    found: list[Issue] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = child(base, index)
        name = entry["name"].lower()
        if name in seen:
            found.append(Issue(child(where, "name"), f"table {name!r} is declared twice (names are case-insensitive)"))
        if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
            found.append(Issue(child(where, "name"), f"{name!r} is reserved for the service's own routes or tables"))
        reason = _database_reserved(name)
        if reason:
            found.append(Issue(child(where, "name"), f"table {name!r}: {reason}; choose another name"))
        found += _text_issues(entry, where, ("title", "description"))
        seen.add(name)
        resource, resource_issues = _resource(name, entry, child(where, "tableSchema"))
        found += resource_issues
        if resource is not None:
            resources.append(resource)
    return resources, found


def _database_reserved(name: str) -> str | None:
    """Why SQLite or PostgreSQL keeps `name` for itself (see `DATABASE_PREFIXES`), or None."""
    for prefix, database in DATABASE_PREFIXES.items():
        if name.startswith(prefix):
            return f"names starting with {prefix!r} are reserved by {database} for its own tables"
    if name in INFORMATION_SCHEMA_NAMES:
        return "the name of a view of PostgreSQL's information_schema is reserved"
    return None


def _text_issues(document: dict[str, Any], where: str, keys: tuple[str, ...]) -> list[Issue]:
    """Titles and descriptions become SQL comments and OpenAPI text: strings or null, nothing else."""
    return [Issue(child(where, key), f"{key} must be a string") for key in keys
            if document.get(key) is not None and not isinstance(document[key], str)]  # fmt: skip


def resource_from_table_schema(name: str, table_schema: dict[str, Any], where: str = "") -> ResourceSpec:
    """One Table Schema on its own (the admin helper routes); raises `InvalidPayload`."""
    too_wide = _width_issue(name.lower(), table_schema, where)
    if too_wide:
        raise InvalidPayload([too_wide])  # before jsonschema, which would take seconds over every field
    found = list(schema.issues(schema.table_schema_validator(), table_schema, prefix=where))
    if found:
        raise InvalidPayload(found)
    resource, found = _resource(name.lower(), {"tableSchema": table_schema}, where)
    if found or resource is None:
        raise InvalidPayload(found)
    return resource


def _width_issue(name: str, table: Any, where: str) -> Issue | None:
    """A table wider than PostgreSQL allows, refused on both databases so that a payload stays portable."""
    fields = table.get("fields") if isinstance(table, dict) else None
    if not isinstance(fields, list) or len(fields) <= MAX_COLUMNS:
        return None
    return Issue(child(where, "fields"), f"table {name!r} has {len(fields):,} fields; PostgreSQL allows at most "
                                         f"{MAX_COLUMNS:,} columns per table, so the limit holds on every database "
                                         "(its fields are not checked one by one until it fits)")


def _resource(name: str, entry: dict[str, Any], where: str) -> tuple[ResourceSpec | None, list[Issue]]:
    table = entry["tableSchema"]
    too_wide = _width_issue(name, table, where)
    if too_wide:
        return None, [too_wide]
    fields: list[FieldSpec] = []
    found: list[Issue] = []
    seen: set[str] = set()
    for index, raw in enumerate(table["fields"]):
        spec, field_issues = _field(raw, _at(where, "fields", index))
        found += field_issues
        if spec.name.lower() in seen:
            found.append(Issue(_at(where, "fields", index, "name"), f"field {spec.name!r} is declared twice"))
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
    found += _protection_issues(fields, key, foreign_keys, where)
    encryption, encryption_issues = _encryption(entry.get("encryptionSchema"), _sibling(where, "encryptionSchema"),
                                                set(declared))
    found += encryption_issues
    resource = ResourceSpec(name=name, fields=tuple(fields), primary_key=key, foreign_keys=foreign_keys,
                            title=entry.get("title"), description=entry.get("description"),
                            encryption=encryption, pointer=where)
    return resource, found


def _sibling(where: str, key: str) -> str:
    """The pointer of `key` beside the one at `where` (`.../tableSchema` → `.../encryptionSchema`)."""
    return child(where.rpartition("/")[0], key)


def _protection_issues(fields: list[FieldSpec], key: tuple[str, ...], foreign_keys: tuple[ForeignKeySpec, ...],
                       where: str) -> list[Issue]:
    """Protected fields hold ciphertext under a random nonce, so nothing may compare them in SQL: not keys
    (the key is part of every ciphertext's associated data), not foreign keys, not unique constraints."""
    linked = {name for fk in foreign_keys for name in fk.fields}
    found: list[Issue] = []
    for index, spec in enumerate(fields):
        at = _at(where, "fields", index)
        if spec.searchable and not spec.protected:
            found.append(Issue(child(at, "searchable"), f"field {spec.name!r}: searchable applies to protected "
                                                        "fields only (plain fields are searchable already)"))
        if not spec.protected:
            continue
        if spec.name in key:
            reason = "is part of the primary key, which must stay readable to find rows and bind ciphertexts"
        elif spec.name in linked:
            reason = "is part of a foreign key, which the database compares in plain text"
        elif spec.unique:
            reason = "is unique, which the database cannot check on ciphertext (each value has a random nonce)"
        else:
            continue
        found.append(Issue(child(at, "protected"), f"field {spec.name!r} {reason}; it cannot be protected"))
    return found


def _encryption(raw: Any, where: str, fields: set[str] | None) -> tuple[tuple[tuple[str, EncryptionEntry], ...],
                                                                        list[Issue]]:
    """An `encryptionSchema`: on a table, field names or "*" → entries; at `data` (`fields` None), "*" only.

    Structure only: the engine names and the variables are checked by `generator.crypto` at generation."""
    if raw is None:
        return (), []
    if not isinstance(raw, dict):
        return (), [Issue(where, 'encryptionSchema must be an object of field names (or "*") to {type, key} '
                                 "entries")]
    entries: list[tuple[str, EncryptionEntry]] = []
    found: list[Issue] = []
    for name, value in raw.items():
        at = child(where, name)
        if fields is None and name != ANY_FIELD:
            found.append(Issue(at, 'data.encryptionSchema holds only "*", the entry for every protected field '
                                   "of every table; put an entry for one field in its table's encryptionSchema"))
        elif fields is not None and name != ANY_FIELD and name not in fields:
            found.append(Issue(at, f"{name!r} is not a declared field of this table"))
        entry, entry_issues = _encryption_entry(value, at)
        found += entry_issues
        if entry is not None:
            entries.append((name, entry))
    return tuple(entries), found


def _encryption_entry(raw: Any, where: str) -> tuple[EncryptionEntry | None, list[Issue]]:
    if not isinstance(raw, dict):
        return None, [Issue(where, "an encryption entry must be an object with type (the engine) and key (the "
                                   "name of the environment variable holding the key)")]
    found = [Issue(child(where, name), f"{name} must be a non-empty string ({what})")
             for name, what in (("type", "the engine, e.g. AES_256_GCM"), ("key", "an environment variable name"))
             if not (isinstance(raw.get(name), str) and raw[name].strip())]
    previous = raw.get("previousKeys", [])
    if not (isinstance(previous, list) and all(isinstance(v, str) and v.strip() for v in previous)):
        found.append(Issue(child(where, "previousKeys"), "previousKeys must be an array of environment variable "
                                                          "names"))
    if found:
        return None, found
    return EncryptionEntry(raw["type"].strip(), raw["key"].strip(), tuple(v.strip() for v in previous),
                           pointer=where), []


def _at(base: str, *tokens: Any) -> str:
    """`base` extended by several keys or indexes."""
    return base + pointer(tokens)


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
        protected=raw.get("protected") is True,
        searchable=raw.get("searchable") is True,
    )
    found = _field_name_issues(spec.name, child(where, "name"))
    found += [Issue(child(where, flag), f"{flag} must be true or false") for flag in ("protected", "searchable")
              if flag in raw and not isinstance(raw[flag], bool)]
    if spec.pattern is not None:
        found += _pattern_issues(spec.pattern, _at(where, "constraints", "pattern"))
    found += _bound_issues(spec, child(where, "constraints"))
    return spec, found + _range_issues(spec, child(where, "constraints"))


def _field_name_issues(name: str, where: str) -> list[Issue]:
    found: list[Issue] = []
    if name.startswith("$"):
        found.append(Issue(where, f"field {name!r}: names starting with '$' are reserved by JSON Schema and "
                                  "OpenAPI ($ref, $schema ...)"))
    if len(name.encode()) > MAX_IDENTIFIER:  # the schema counts characters; PostgreSQL counts UTF-8 bytes
        found.append(Issue(where, f"field {name!r} is {len(name.encode())} bytes in UTF-8; PostgreSQL silently "
                                  f"truncates names beyond {MAX_IDENTIFIER} bytes, so use a shorter name"))
    return found


def _pattern_issues(pattern: str, where: str) -> list[Issue]:
    """A Table Schema pattern matches the whole value, so the service matches `^(?:pattern)$`, with RE2.

    RE2 matches in linear time; Python's backtracking `re` can take seconds on a pattern like `^(a+)+$`, so
    a pattern RE2 cannot compile (backreferences, lookarounds) is refused at generation rather than served.
    `re` must take it too: the served OpenAPI document carries the anchored pattern, and `re` refuses there
    what RE2 allows (flags such as `(?i)` not at the start)."""
    anchored = f"^(?:{pattern})$"
    try:
        re.compile(pattern)
    except re.error as exc:
        return [Issue(where, f"not a valid regular expression: {exc}")]
    for candidate in (pattern, anchored):
        try:
            re2.compile(candidate, _RE2_OPTIONS)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            return [Issue(where, f"RE2 cannot compile this pattern ({reason}); patterns are matched in linear "
                                 "time, so backreferences and lookarounds are not supported")]
    try:
        re.compile(anchored)
    except re.error as exc:
        return [Issue(where, f"the pattern does not work when matched against the whole value as {anchored!r}: "
                             f"{exc}")]
    return []


def _bound_issues(spec: FieldSpec, where: str) -> list[Issue]:
    """Each of `minimum` and `maximum` on its own: applicable to the type, and a value of that type."""
    found: list[Issue] = []
    for bound in ("minimum", "maximum"):
        value, at = getattr(spec, bound), child(where, bound)
        if value is None:
            continue
        if spec.type not in RANGE_TYPES:
            found.append(Issue(at, f"{bound} does not apply to type {spec.type}"))
        elif spec.type in NUMBER_TYPES and not _is_number(value):
            found.append(Issue(at, f"{bound} of a {spec.type} must be a number"))
        elif spec.type in BOUND_PARSERS and not written(spec.type, str(value)):
            found.append(Issue(at, f"{bound} {value!r} is not a {spec.type} as values of this field are written"))
        elif spec.type in BOUND_PARSERS:
            try:
                BOUND_PARSERS[spec.type](str(value))
            except ValueError as exc:
                found.append(Issue(at, f"{bound} {value!r} is not a valid {spec.type}: {exc}"))
    return found


def _range_issues(spec: FieldSpec, where: str) -> list[Issue]:
    """Bounds that no value could satisfy: `minimum` above `maximum`, `minLength` above `maxLength`."""
    found: list[Issue] = []
    low, high = _bound_value(spec, spec.minimum), _bound_value(spec, spec.maximum)
    if low is not None and high is not None:
        try:
            inverted = low > high
        except TypeError:  # a datetime with a UTC offset against one without
            found.append(Issue(where, f"field {spec.name!r}: minimum {spec.minimum!r} and maximum {spec.maximum!r} "
                                      "cannot be compared; give both a UTC offset or neither"))
        else:
            if inverted:
                found.append(Issue(where, f"field {spec.name!r}: minimum {spec.minimum!r} is greater than maximum "
                                          f"{spec.maximum!r}, so no value could be stored"))
    lengths = (spec.min_length, spec.max_length)
    if all(isinstance(n, int) for n in lengths) and spec.min_length > spec.max_length:  # type: ignore[operator]
        found.append(Issue(where, f"field {spec.name!r}: minLength {spec.min_length} is greater than maxLength "
                                  f"{spec.max_length}, so no value could be stored"))
    return found


def _bound_value(spec: FieldSpec, value: Any) -> Any:
    """A bound as a comparable value of the field's type, or None when absent or invalid (reported apart)."""
    if value is None:
        return None
    if spec.type in NUMBER_TYPES:
        return value if _is_number(value) else None
    if spec.type not in BOUND_PARSERS or not written(spec.type, str(value)):
        return None
    try:
        return BOUND_PARSERS[spec.type](str(value))
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _datetime_bound(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))


def _yearmonth_bound(value: str) -> tuple[int, int]:
    return int(value[:4]), int(value[5:])


# Bounds of these types must have the text form values have (`generator.literals`, checked first), and are
# parsed as the served converters parse values, so they compare as dates and times, not as text.
BOUND_PARSERS: dict[str, Callable[[str], Any]] = {
    "date": date.fromisoformat, "time": time.fromisoformat, "datetime": _datetime_bound, "yearmonth": _yearmonth_bound,
}  # fmt: skip


def _foreign_key_issues(resources: list[ResourceSpec], entries: list[dict[str, Any]], base: str,
                        names: set[str]) -> list[Issue]:
    """Keys naming declared fields and tables; `names` are all declared tables, built or not (a table that
    failed to build has its own issue, and a key referencing it is not one more)."""
    by_name = {r.name: r for r in resources}
    found: list[Issue] = []
    for index, entry in enumerate(entries):
        resource = by_name.get(entry["name"].lower())
        for fk_index, fk in enumerate(resource.foreign_keys if resource else ()):
            where = _at(base, index, "tableSchema", "foreignKeys", fk_index)
            declared = {f.name for f in resource.fields}
            missing = [f for f in fk.fields if f not in declared]
            if missing:
                found.append(Issue(child(where, "fields"), f"foreign key field {', '.join(map(repr, missing))} "
                                                           f"is not a declared field of {resource.name!r}"))
            if len(set(fk.fields)) != len(fk.fields):
                found.append(Issue(child(where, "fields"), "a foreign key names a field twice"))
            target = by_name.get(fk.resource)
            if target is None and fk.resource in names:
                continue
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
    relationships: dict[str, Any], keys: dict[str, tuple[str, ...]], base: str, names: set[str]
) -> tuple[list[ManyToManySpec], list[Issue]]:
    """Pairs of declared tables (`names`; a pair with a table that failed to build is skipped, that table has
    its own issue). Each association table is a new table name: reserved names apply, it must not clash with
    a declared table or another pair's, and it and its columns (`<table>_<key>`, and `related_<table>_<key>`
    for the second side of a self-pair) must fit PostgreSQL's identifiers."""
    pairs: list[ManyToManySpec] = []
    found: list[Issue] = []
    for index, pair in enumerate(relationships.get("manyToMany", [])):
        where = _at(base, "relationships", "manyToMany", index)
        left, right = (p.lower() for p in pair)
        unknown = [p for p in (left, right) if p not in names]
        if unknown:
            found.append(Issue(where, f"many-to-many pair names undeclared table {', '.join(map(repr, unknown))}"))
            continue
        if left not in keys or right not in keys:
            continue
        spec = ManyToManySpec(left, right)
        if spec in pairs or ManyToManySpec(right, left) in pairs:
            continue
        problem = _association_problem(spec, keys, names, {p.table_name for p in pairs})
        if problem:
            found.append(Issue(where, problem))
        else:
            pairs.append(spec)
    return pairs, found


def _association_problem(spec: ManyToManySpec, keys: dict[str, tuple[str, ...]], names: set[str],
                         taken: set[str]) -> str | None:
    """Why the association table of `spec` cannot be created, or None."""
    table = spec.table_name
    second = f"related_{spec.right}" if spec.left == spec.right else spec.right
    columns = [f"{spec.left}_{k}" for k in keys[spec.left]] + [f"{second}_{k}" for k in keys[spec.right]]
    if any(len(name.encode()) > MAX_IDENTIFIER for name in (table, *columns)):
        return (f"the association table {table!r} or one of its columns would be longer than {MAX_IDENTIFIER} "
                "bytes, which PostgreSQL silently truncates; use shorter names")
    if table in names:
        return f"the association table {table!r} clashes with a declared table"
    if table in taken:
        return f"the association table {table!r} is also the association table of another pair"
    if table.startswith(RESERVED_PREFIX):
        return f"the association table {table!r} would take the {RESERVED_PREFIX!r} prefix the service reserves"
    reason = _database_reserved(table)
    return f"the association table {table!r}: {reason}" if reason else None


def _frictionless_issues(entries: list[dict[str, Any]], base: str) -> list[Issue]:
    from frictionless import Schema  # imported late: it is slow to import and only strict validation needs it

    found: list[Issue] = []
    for index, entry in enumerate(entries):
        if _too_wide(entry):
            continue  # refused for its width already; frictionless would take seconds over its fields
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
