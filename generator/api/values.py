"""Request JSON → column values, one converter per field, built once per generation.

Connexion has already checked JSON types and constraints against the served schema; converters turn text
into dates, times and exact numbers, check what JSON Schema cannot (real calendar dates, date ranges,
geopoint ranges, ISO durations, GeoJSON structure) and report each bad field as an issue with a pointer.

`RowReader.check_indexed` bounds the size of text that goes into an index (primary keys and `unique` fields)
before a write, so a value too long for PostgreSQL's btree is a 400 naming the field on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import isodate

from generator.codec import LARGEST_NUMBER
from generator.errors import Issue, bad_request
from generator.literals import written
from generator.payload.specs import FieldSpec, ResourceSpec
from generator.pointers import child

Converter = Callable[[Any], Any]


def _date(value: str) -> date:
    return date.fromisoformat(value)


def _time(value: str) -> time:
    parsed = time.fromisoformat(value)
    if parsed.tzinfo is not None:
        raise ValueError("a time with a UTC offset is not supported; send the local time")
    return parsed


def _datetime(value: str) -> datetime:
    if len(value) < 16 or value[10] not in "Tt ":  # fromisoformat would take a bare date as midnight
        raise ValueError(f"{value!r} is not an ISO 8601 date-time (date, 'T', time, optional offset)")
    try:
        return datetime.fromisoformat(value.replace("t", "T").replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None


def _number(value: Any) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite() or number.copy_abs() > LARGEST_NUMBER:
        raise ValueError("a number must be finite and within ±1.7976931348623157e308")
    return number


def _duration(value: str) -> str:
    isodate.parse_duration(value)
    return value


def _geopoint(value: Any) -> Any:
    if isinstance(value, str):
        lon, lat = (float(part) for part in value.split(","))
    elif isinstance(value, list):
        lon, lat = value
    else:
        lon, lat = value["lon"], value["lat"]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError("longitude must be within ±180 and latitude within ±90")
    return value


GEOMETRY_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
                  "MultiPolygon": 3}  # nesting of `coordinates` above one position


def _geojson(value: Any) -> Any:
    """RFC 7946 GeoJSON: a geometry, a Feature or a FeatureCollection, checked structurally.

    A compact validator rather than the `geojson` package, which accepts a Feature without `geometry` and
    fails with AttributeError or IndexError on some malformed input instead of saying what is wrong."""
    problems = list(_geojson_problems(value, ""))
    if problems:
        raise ValueError(f"not RFC 7946 GeoJSON: {problems[0]}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _geojson_problems(value: Any, at: str) -> Iterator[str]:
    where = at or "the value"
    if not isinstance(value, dict):
        yield f"{where} must be an object"
        return
    kind = value.get("type")
    if "bbox" in value:
        box = value["bbox"]
        if not (isinstance(box, list) and len(box) >= 4 and len(box) % 2 == 0 and all(map(_is_number, box))):
            yield f"{at}/bbox must be an array of 2×n numbers (n ≥ 2)"
    if kind == "Feature":
        for member in ("geometry", "properties"):
            if member not in value:
                yield f"{at}/{member} is required in a Feature (null when absent)"
        if value.get("geometry") is not None:
            yield from _geometry_problems(value["geometry"], f"{at}/geometry")
        if value.get("properties") is not None and not isinstance(value["properties"], dict):
            yield f"{at}/properties must be an object or null"
        if "id" in value and not (isinstance(value["id"], str) or _is_number(value["id"])):
            yield f"{at}/id must be a string or a number"
    elif kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list):
            yield f"{at}/features must be an array of Features"
            return
        for index, feature in enumerate(features):
            if not (isinstance(feature, dict) and feature.get("type") == "Feature"):
                yield f"{at}/features/{index} must be a Feature"
            else:
                yield from _geojson_problems(feature, f"{at}/features/{index}")
    else:
        yield from _geometry_problems(value, at)


def _geometry_problems(value: Any, at: str) -> Iterator[str]:
    if not isinstance(value, dict):
        yield f"{at or 'the value'} must be a geometry object"
        return
    kind = value.get("type")
    if kind == "GeometryCollection":
        geometries = value.get("geometries")
        if not isinstance(geometries, list):
            yield f"{at}/geometries must be an array of geometries"
            return
        for index, geometry in enumerate(geometries):
            yield from _geometry_problems(geometry, f"{at}/geometries/{index}")
        return
    if kind not in GEOMETRY_DEPTH:
        known = ", ".join([*GEOMETRY_DEPTH, "GeometryCollection", "Feature", "FeatureCollection"])
        yield f"{at}/type must be one of {known}, not {kind!r}"
        return
    if "coordinates" not in value:
        yield f"{at}/coordinates is required in a {kind}"
        return
    yield from _coordinate_problems(kind, value["coordinates"], GEOMETRY_DEPTH[kind], f"{at}/coordinates")


def _coordinate_problems(kind: str, value: Any, depth: int, at: str) -> Iterator[str]:
    if depth == 0:
        if not (isinstance(value, list) and len(value) >= 2 and all(map(_is_number, value))):
            yield f"{at} must be a position: an array of 2 or more numbers (longitude, latitude[, altitude])"
        return
    if not isinstance(value, list):
        yield f"{at} must be an array"
        return
    for index, item in enumerate(value):
        yield from _coordinate_problems(kind, item, depth - 1, f"{at}/{index}")
    if kind in ("LineString", "MultiLineString") and depth == 1 and len(value) < 2:
        yield f"{at} must hold two or more positions (a line)"
    if kind in ("Polygon", "MultiPolygon") and depth == 1 and (len(value) < 4 or value[0] != value[-1]):
        yield f"{at} must be a linear ring: four or more positions, the last equal to the first"


def _identity(value: Any) -> Any:
    return value


CONVERTERS: dict[str, Converter] = {
    "date": _date, "time": _time, "datetime": _datetime, "number": _number,
    "duration": _duration, "geopoint": _geopoint, "geojson": _geojson,
}  # fmt: skip


BOUNDED_TEXT = frozenset({"date", "time", "datetime", "yearmonth"})  # bounds JSON Schema cannot state


def _comparable(value: Any) -> Any:
    """Datetimes compare by instant; one without an offset is taken as UTC, so a bound with an offset and a
    value without one (or the reverse) compare instead of failing. YYYY-MM text compares as text."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def converter(field: FieldSpec) -> Converter:
    """The converter for `field`, with its date/time range constraints folded in."""
    convert = CONVERTERS.get(field.type, _identity)
    if field.type not in BOUNDED_TEXT or (field.minimum is None and field.maximum is None):
        return convert
    low = None if field.minimum is None else _comparable(convert(str(field.minimum)))
    high = None if field.maximum is None else _comparable(convert(str(field.maximum)))

    def bounded(value: Any) -> Any:
        result = convert(value)
        if low is not None and _comparable(result) < low:
            raise ValueError(f"must not be before {field.minimum}")
        if high is not None and _comparable(result) > high:
            raise ValueError(f"must not be after {field.maximum}")
        return result

    return bounded


# PostgreSQL refuses a btree index entry over 2,704 bytes (a third of an 8 kB page, less overhead), which
# bounds primary keys and `unique` values. It compresses an entry first, so whether a value fits depends on
# its content; a fixed, lower bound on the UTF-8 size of the text (summed over a composite key) answers alike
# for every value and on both databases, and leaves room for the entry's header and any non-text key parts.
MAX_INDEXED_BYTES = 2000
INDEXED_TEXT_TYPES = frozenset({"string", "duration", "yearmonth"})



def from_text(field: FieldSpec, text: str) -> Any:
    """A value written in a URL (a path key or a query string) → the column value; raises ValueError.

    The text must have the form the served document states for the type (`literals.TEXT_FORMS`): Python's
    own parsers accept more (`+5`, `1_000`, `20240517`), which the document would not admit to."""
    if not written(field.type, text):
        raise ValueError(f"{text[:40]!r} is not a {field.type} as this service writes one")
    match field.type:
        case "integer" | "year":
            return int(text)
        case "boolean" if text in ("true", "false"):
            return text == "true"
        case "boolean":
            raise ValueError("must be true or false")
    return converter(field)(text)


class RowReader:
    """Converts a validated JSON object into column values for one resource."""

    def __init__(self, resource: ResourceSpec) -> None:
        self.converters = {f.name: converter(f) for f in resource.fields}
        self.fields = {f.name: f for f in resource.fields}
        text = {f.name for f in resource.fields if f.type in INDEXED_TEXT_TYPES and not f.is_uuid}
        key = tuple(name for name in resource.primary_key if name in text)
        keys = set(resource.primary_key)
        unique = [(f.name,) for f in resource.fields if f.unique and f.name in text and f.name not in keys]
        self.indexed: list[tuple[str, ...]] = ([key] if key else []) + unique
        self.key = keys

    def __call__(self, body: Mapping[str, Any], *, pointer: str = "") -> dict[str, Any]:
        values: dict[str, Any] = {}
        issues: list[Issue] = []
        for name, value in body.items():
            convert = self.converters.get(name)
            if convert is None:
                issues.append(Issue(child(pointer, name), f"{name!r} is not a field of this resource"))
            elif value is None:
                values[name] = None
            else:
                try:
                    values[name] = convert(value)
                except (ValueError, TypeError, ArithmeticError, isodate.ISO8601Error) as exc:
                    issues.append(Issue(child(pointer, name), f"{name}: {exc}"))
        if issues:
            raise bad_request("Some fields have invalid values", issues)
        return values

    def check_indexed(self, values: Mapping[str, Any], *, key_pointer: str = "") -> None:
        """Refuse text too large for an index entry (see `MAX_INDEXED_BYTES`), before anything is written.

        Key parts taken from the URL point at `key_pointer` (`/path/id`), the others into the body."""
        issues: list[Issue] = []
        for names in self.indexed:
            sizes = {n: len(v.encode()) for n in names if isinstance(v := values.get(n), str)}
            if sum(sizes.values()) <= MAX_INDEXED_BYTES:
                continue
            what = f"{names[0]} is" if len(names) == 1 else f"the key ({', '.join(names)}) is"
            issues += [Issue(child(key_pointer if n in self.key else "", n),
                             f"{n}: {what} {sum(sizes.values())} bytes in UTF-8; a key or unique value may hold at "
                             f"most {MAX_INDEXED_BYTES}") for n in sizes]
        if issues:
            raise bad_request(f"A value is too long for a key or unique field (at most {MAX_INDEXED_BYTES} bytes)",
                              issues)

    def from_query(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Query-string values (text) for the fields they name; each bad one is an issue."""
        values: dict[str, Any] = {}
        issues: list[Issue] = []
        for name, text in params.items():
            try:
                values[name] = from_text(self.fields[name], text)
            except (ValueError, ArithmeticError, isodate.ISO8601Error) as exc:
                issues.append(Issue(child("/query", name), f"{name}: {exc}"))
        if issues:
            raise bad_request("Some query parameters have invalid values", issues)
        return values
