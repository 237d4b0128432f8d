"""JSON in and out, shared by every layer: orjson for speed, `Decimal` kept exact both ways.

Request bodies are parsed with `parse_float=Decimal` so a `number` keeps its digits; output writes a
`Decimal` as a raw JSON number (orjson `Fragment`), never as a string or a rounded float."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=OPTIONS)


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


def loads(data: str | bytes) -> Any:
    """Fast path for trusted JSON (our own database columns)."""
    return orjson.loads(data)


def loads_exact(data: str | bytes) -> Any:
    """Client JSON: numbers with a fraction or exponent become `Decimal` so no digit is lost."""
    return json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
