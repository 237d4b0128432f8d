"""Python values (as `api/values.py` produces them) ⇄ plaintext bytes, exactly.

The first byte tags the Python type, so a value comes back as the same type with the same value whatever
the field's declared type: a `Decimal` keeps its digits and exponent, a datetime its offset (or lack of
one) and microseconds, a geopoint the form it was sent in (text, array or object). JSON values (object,
array, geojson, geopoint, any) are written with `generator.codec` and read with `parse_float=Decimal`, as
request bodies are, so numbers with a fraction stay exact. NULL is never encrypted (see `FieldCipher`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from generator import codec as json_codec
from generator.crypto.errors import DecryptionFailed

_ENCODERS: list[tuple[type, bytes, Callable[[Any], bytes]]] = [
    (bool, b"b", lambda v: b"1" if v else b"0"),  # before int: bool is an int
    (int, b"i", lambda v: str(v).encode()),
    (Decimal, b"n", lambda v: str(v).encode()),
    (float, b"f", lambda v: repr(v).encode()),
    (str, b"s", lambda v: v.encode()),
    (datetime, b"T", lambda v: v.isoformat().encode()),  # before date: a datetime is a date
    (date, b"d", lambda v: v.isoformat().encode()),
    (time, b"t", lambda v: v.isoformat().encode()),
    (dict, b"j", json_codec.dumps),
    (list, b"j", json_codec.dumps),
    (tuple, b"j", json_codec.dumps),
]

# The same encoders by exact type, for the usual case (a page of values costs one dict lookup each, not a walk
# of `isinstance` checks); subclasses (an IntEnum, say) still take the ordered walk above.
_BY_TYPE: dict[type, tuple[bytes, Callable[[Any], bytes]]] = {kind: (tag, write) for kind, tag, write in _ENCODERS}

_DECODERS: dict[int, Callable[[str], Any]] = {  # by the tag's byte value: `plaintext[0]`, no slice
    ord("b"): lambda t: t == "1",
    ord("i"): int,
    ord("n"): Decimal,
    ord("f"): float,
    ord("s"): str,
    ord("T"): datetime.fromisoformat,
    ord("d"): date.fromisoformat,
    ord("t"): time.fromisoformat,
    ord("j"): json_codec.EXACT.decode,  # msgspec: numbers with a fraction as Decimal, big integers exact
}


def encode(value: Any) -> bytes:
    """A non-null value → tagged plaintext; TypeError for a type no field holds."""
    found = _BY_TYPE.get(type(value))
    if found is not None:
        return found[0] + found[1](value)
    for kind, tag, write in _ENCODERS:
        if isinstance(value, kind):
            return tag + write(value)
    raise TypeError(f"a protected field cannot hold a {type(value).__name__}")


def decode(plaintext: bytes) -> Any:
    """Tagged plaintext → the value `encode` was given. Only authenticated plaintext reaches here."""
    try:
        return _DECODERS[plaintext[0]](plaintext[1:].decode())
    except (KeyError, IndexError, ValueError):
        raise DecryptionFailed("a protected value decrypted to an unknown encoding (written by a newer "
                               "version?)") from None
