"""JSON in and out, shared by every layer: orjson for speed, `Decimal` kept exact both ways.

Request bodies are parsed with `parse_float=Decimal` so a `number` keeps its digits; output writes a
`Decimal` as a raw JSON number (orjson `Fragment`), never as a string or a rounded float."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from generator.pointers import child

OPTIONS = orjson.OPT_NON_STR_KEYS
EXACT = msgspec.json.Decoder(float_hook=Decimal)  # numbers with a fraction or exponent as Decimal, 3x json's speed
LONG_INTEGER = re.compile(r"[0-9]{20}")
LONG_INTEGER_BYTES = re.compile(rb"[0-9]{20}")
LARGEST_NUMBER = Decimal("1.7976931348623157e308")  # the largest double: what SQLite and clients can hold


def _default(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=OPTIONS)
    except TypeError as exc:  # orjson stops at 64-bit integers; JSON itself has no such limit
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_big_ints_as_fragments(value), default=_default, option=OPTIONS)


def _big_ints_as_fragments(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _big_ints_as_fragments(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_as_fragments(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))
    return value


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


def loads(data: Any) -> Any:
    """Fast path for trusted JSON (our own database columns), called once per JSON value read, so kept to
    one C-level scan and one parse: a 20-digit run (an integer orjson would turn into a float) sends the
    value to `json`. Bytes are scanned without decoding. SQLite's JSON columns have numeric affinity, so a
    stored scalar such as `0` or `1.5` comes back already decoded."""
    if isinstance(data, str):
        return orjson.loads(data) if LONG_INTEGER.search(data) is None else json.loads(data)
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data) if not isinstance(data, bytes) else data
        return orjson.loads(data) if LONG_INTEGER_BYTES.search(data) is None else json.loads(data)
    return data


def loads_exact(data: str | bytes) -> Any:
    """Client JSON: numbers with a fraction or exponent become `Decimal` so no digit is lost.

    orjson reads it first: it refuses what would break later (invalid UTF-8, lone surrogates, NaN, nesting
    deeper than 1024) with a clear message, and only then does the exact parse run. A string or key with a
    NUL character is refused (`NulCharacter`, with pointers): PostgreSQL cannot store one in text or JSONB,
    and SQLite must refuse what PostgreSQL refuses so both databases behave alike."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in str(exc):
            raise
        exact = json.loads(data, parse_float=Decimal)
        _refuse_nul(raw, exact)
        raise OutOfRange(str(exc), list(_huge_numbers(exact))) from None
    _refuse_nul(raw, value)
    if isinstance(value, str | int | bool) or value is None:
        return value
    return EXACT.decode(raw)  # orjson has refused what is malformed; this pass only makes numbers exact


class NulCharacter(ValueError):
    """A string or key with a NUL character (`\\u0000`); `pointers` says where (a key's pointer is its member's).

    The message names the pointers too, for callers that render only the message."""

    reason = "the NUL character (\\u0000) cannot be stored"

    def __init__(self, pointers: list[str]) -> None:
        shown = (p.replace("\0", "\\u0000") or "/" for p in pointers)  # a key's NUL, legible in the message
        super().__init__(f"{self.reason}: at {', '.join(shown)}")
        self.pointers = pointers


def _refuse_nul(raw: bytes, value: Any) -> None:
    """Raise `NulCharacter` if a string or key of `value` holds NUL; the byte search keeps the common case free.

    Iterative: orjson allows nesting 1024 deep, beyond Python's recursion limit."""
    if b"\\u0000" not in raw:
        return
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if "\0" in item:
                found.append(where)
        elif isinstance(item, dict):
            for key, member in item.items():
                place = child(where, key)
                if "\0" in key:
                    found.append(place)
                stack.append((place, member))
        elif isinstance(item, list):
            stack.extend((f"{where}/{index}", member) for index, member in enumerate(item))
    if found:
        raise NulCharacter(sorted(set(found)))


class OutOfRange(ValueError):
    """A JSON number beyond ±1.8e308; `pointers` says where."""

    def __init__(self, message: str, pointers: list[str]) -> None:
        super().__init__(message)
        self.pointers = pointers


def _huge_numbers(value: Any, where: str = "") -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _huge_numbers(item, child(where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _huge_numbers(item, f"{where}/{index}")
    elif isinstance(value, Decimal) and value.copy_abs() > LARGEST_NUMBER:  # copy_abs: no context, no Overflow
        yield where


