"""Blind indexes: HMAC-SHA256 of a normalised value, so equality filters work on protected fields.

Values equal for the field's type give equal bytes before hashing: datetimes by instant (one without an
offset is taken as UTC, as the API compares them), numbers by exact decimal value (1, 1.0 and 1.00 alike),
times with microseconds written out, uuids in lower case, JSON canonically (sorted keys, no spaces, numbers
by exact value), geopoints as "lon,lat" whichever of the three forms was sent. The index reveals which rows
hold equal values (that is its purpose) and nothing else; its key never encrypts anything.

A raw-key field's index key is derived with HKDF-SHA256 under its own label, with the table and field in
`info`, so two fields under one key get unrelated indexes and the index key is never the encryption key."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from generator.crypto.keys import KEY_BYTES

LABEL = b"drg blind index v1"
EPOCH = datetime(1970, 1, 1)
MICROSECOND = timedelta(microseconds=1)


def derive_key(key: bytes, table: str, field: str, label: bytes = LABEL) -> bytes:
    """The blind-index key of `table.field` from that field's encryption key."""
    info = label + b"\x00" + table.encode() + b"\x00" + field.encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


def index(key: bytes, normalised: bytes) -> bytes:
    return hmac.new(key, normalised, hashlib.sha256).digest()


def indexer(key: bytes) -> Callable[[bytes], bytes]:
    """`index` under one key, the same bytes in about half the time (a bulk write indexes every row): HMAC
    as RFC 2104 defines it, H((K ^ opad) || H((K ^ ipad) || m)), with both keyed SHA-256 states computed
    once and copied per value (`hmac.HMAC.copy` wraps the same copies in a Python object per value).
    test_crypto checks it against `hmac` for any key and message."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def index_of(normalised: bytes) -> bytes:
        digest = inner.copy()
        digest.update(normalised)
        mac = outer.copy()
        mac.update(digest.digest())
        return mac.digest()

    return index_of


def normaliser(field_type: str, *, uuid: bool = False) -> Callable[[Any], bytes]:
    """`normalise` for one field: text fields (the usual searchable ones) skip the dispatch."""
    if field_type == "string" and not uuid:
        return _text
    return partial(normalise, field_type, uuid=uuid)


def _text(value: Any) -> bytes:
    return value.encode() if type(value) is str else str(value).encode()


def normalise(field_type: str, value: Any, *, uuid: bool = False) -> bytes:
    """The bytes every value equal to `value` (for `field_type`) shares."""
    match field_type:
        case "integer" | "year" | "number":
            return exact_number(value).encode()
        case "boolean":
            return b"true" if value else b"false"
        case "datetime":
            return _instant(value).encode()
        case "time":
            return value.isoformat(timespec="microseconds").encode() if isinstance(value, time) else str(value).encode()
        case "date":
            return value.isoformat().encode() if isinstance(value, date) else str(value).encode()
        case "geopoint":
            return _geopoint(value).encode()
        case "object" | "array" | "geojson" | "any":
            return canonical_json(value).encode()
    text = str(value)
    return (text.lower() if uuid else text).encode()


def exact_number(value: Any) -> str:
    """A number as sign, significant digits and exponent: equal values, equal text (no rounding ever)."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    sign, digits, exponent = number.as_tuple()
    text = "".join(map(str, digits)).lstrip("0")
    if not text:
        return "0"
    stripped = text.rstrip("0")
    exponent = int(exponent) + len(text) - len(stripped)
    return f"{'-' if sign else ''}{stripped}e{exponent}"


def _instant(value: Any) -> str:
    return str(instant(value if isinstance(value, datetime) else datetime.fromisoformat(str(value))))


def instant(moment: datetime) -> int:
    """Microseconds since 1970 UTC (no offset: taken as UTC). Plain arithmetic, so 0001-01-01T00:00+05:00,
    whose UTC date is before year 1, works where `astimezone` overflows."""
    since = moment.replace(tzinfo=None) - EPOCH - (moment.utcoffset() or timedelta(0))
    return since // MICROSECOND


def _geopoint(value: Any) -> str:
    if isinstance(value, str):
        lon, lat = value.split(",")
    elif isinstance(value, list | tuple):
        lon, lat = value
    else:
        lon, lat = value["lon"], value["lat"]
    return f"{exact_number(str(lon).strip())},{exact_number(str(lat).strip())}"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, every number by its exact value (`exact_number`), booleans as JSON's."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return "n" + exact_number(value)  # strings and numbers are tagged, so "1" never equals 1
    return "s" + str(value)
