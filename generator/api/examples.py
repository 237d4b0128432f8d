"""Examples for the served document: every property and parameter carries one the service accepts.

Swagger UI's "Try it out" sends examples unedited; without them it invents values the service refuses (the
int64 maximum, rounded by JavaScript; 200-digit durations). The key parameter's example is the key of the row
the body examples create, and a foreign key takes the example of the field it references, so POST then GET,
PUT or PATCH of the example key work unedited, child rows included."""

from __future__ import annotations

import copy
import math
import random
import re
from functools import lru_cache
from typing import Any

from rstr.xeger import Xeger

from generator.api.values import CONVERTERS
from generator.payload.specs import FieldSpec, Generation, ResourceSpec

INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
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
