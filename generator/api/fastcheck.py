"""A compiled fast path in front of jsonschema for request bodies.

jsonschema walks a schema per value (about 150 µs for a 10-field row): at 100,000 rows a bulk insert spent
most of its time there. fastjsonschema compiles a schema to Python code (about 10 µs a row), but it is
not a drop-in: OpenAPI's `nullable`, our RE2 patterns (linear time; fastjsonschema would run Python's
`re`), `x-checked-by` and jsonschema's format checkers differ. So the fast path only ever *accepts*:

- the schema it compiles is ours with `nullable` turned into a `null` type, `pattern` and `format` taken
  out and checked beside it with RE2 and jsonschema's own format checker, and `oneOf` dropped where a
  converter checks the value (`x-checked-by`), exactly as `bodies.OpenApiValidator` does;
- a value it accepts is valid; anything else goes to jsonschema, which says what is wrong and where.
A schema with a `$ref` or a pattern below the top level gets no fast path (it is validated as before)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from generator.literals import TEXT_PATTERNS, UUID_PATTERN
from generator.patterns import searcher

DRAFT4 = "http://json-schema.org/draft-04/schema#"
ANNOTATIONS = frozenset({"example", "examples", "description", "title", "readOnly", "writeOnly", "deprecated"})
FORMATS = Draft4Validator.FORMAT_CHECKER
# Our own patterns (dates, times, uuids...) have no nested quantifiers, so Python's `re` runs them in linear
# time, and ten times faster than RE2's Python wrapper; a payload author's pattern always runs on RE2.
TRUSTED = {pattern: re.compile(pattern).search for pattern in (*TEXT_PATTERNS.values(), UUID_PATTERN)}


class Unsupported(Exception):
    """The schema uses something the fast path does not translate faithfully."""


def _translate(schema: Any, top: bool, checks: list[tuple[str, str, str]], name: str | None) -> Any:
    if isinstance(schema, list):
        return [_translate(item, False, checks, None) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        raise Unsupported("$ref")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-") or key == "nullable":
            continue
        if key in ("pattern", "format"):
            if name is None:
                raise Unsupported(f"{key} below the top level")
            checks.append((name, key, value))
            continue
        if key == "oneOf" and "x-checked-by" in schema:
            continue
        if key == "properties":
            out[key] = {prop: _translate(sub, False, checks, prop if top else None) for prop, sub in value.items()}
        elif key in ("enum", "required", "type"):
            out[key] = value
        else:
            out[key] = _translate(value, False, checks, None)
    if schema.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def compile_fast(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """A function saying True only for values `OpenApiValidator(schema)` accepts, or None (no fast path)."""
    checks: list[tuple[str, str, str]] = []
    try:
        translated = _translate(schema, True, checks, None)
        compiled = fastjsonschema.compile({**translated, "$schema": DRAFT4}, use_formats=False)
    except (Unsupported, fastjsonschema.JsonSchemaDefinitionException):
        return None
    patterns = [(name, TRUSTED.get(value) or searcher(value).search) for name, kind, value in checks
                if kind == "pattern"]
    formats = [(name, value) for name, kind, value in checks if kind == "format" and value in FORMATS.checkers]

    def accepts(instance: Any) -> bool:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaException:
            return False
        if not isinstance(instance, dict):
            return True
        for name, search in patterns:
            value = instance.get(name)
            if isinstance(value, str) and not search(value):
                return False
        return all(FORMATS.conforms(instance[name], fmt) for name, fmt in formats if instance.get(name) is not None)

    return accepts


class FastValidator:
    """`iter_errors` as jsonschema's, answered by the compiled check when it accepts the value."""

    def __init__(self, full: Any, schema: dict[str, Any]) -> None:
        self.full = full
        self.accepts = compile_fast(schema)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        if self.accepts is not None and self.accepts(instance):
            return
        yield from self.full.iter_errors(instance)
