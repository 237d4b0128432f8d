"""Request JSON → column values, one converter per field, built once per generation.

Connexion has already checked JSON types and constraints against the served schema; converters turn text
into dates, times and exact numbers, check what JSON Schema cannot (real calendar dates, date ranges,
geopoint ranges, ISO durations) and report each bad field as an issue with a pointer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import isodate

from generator.codec import LARGEST_NUMBER
from generator.errors import Issue, bad_request
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
        return datetime.fromisoformat(value)
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


def _identity(value: Any) -> Any:
    return value


CONVERTERS: dict[str, Converter] = {
    "date": _date, "time": _time, "datetime": _datetime, "number": _number,
    "duration": _duration, "geopoint": _geopoint,
}  # fmt: skip


def converter(field: FieldSpec) -> Converter:
    """The converter for `field`, with its date/time range constraints folded in."""
    convert = CONVERTERS.get(field.type, _identity)
    if field.type not in ("date", "time", "datetime") or (field.minimum is None and field.maximum is None):
        return convert
    low = None if field.minimum is None else convert(str(field.minimum))
    high = None if field.maximum is None else convert(str(field.maximum))

    def bounded(value: Any) -> Any:
        result = convert(value)
        if low is not None and result < low:
            raise ValueError(f"must not be before {field.minimum}")
        if high is not None and result > high:
            raise ValueError(f"must not be after {field.maximum}")
        return result

    return bounded


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def from_text(field: FieldSpec, text: str) -> Any:
    """A value written in a URL (a path key or a query string) → the column value; raises ValueError."""
    match field.type:
        case "integer" | "year":
            value = int(text) if len(text) <= 20 else INT64_MAX + 1
            if not INT64_MIN <= value <= INT64_MAX:
                raise ValueError("out of the 64-bit integer range")
            return value
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
