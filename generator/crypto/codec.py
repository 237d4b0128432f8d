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

_DECODERS: dict[bytes, Callable[[str], Any]] = {
    b"b": lambda t: t == "1",
    b"i": int,
    b"n": Decimal,
    b"f": float,
    b"s": lambda t: t,
    b"T": datetime.fromisoformat,
    b"d": date.fromisoformat,
    b"t": time.fromisoformat,
    b"j": json_codec.EXACT.decode,  # msgspec: numbers with a fraction as Decimal, big integers exact
}


def encode(value: Any) -> bytes:
    """A non-null value → tagged plaintext; TypeError for a type no field holds."""
    for kind, tag, write in _ENCODERS:
        if isinstance(value, kind):
            return tag + write(value)
    raise TypeError(f"a protected field cannot hold a {type(value).__name__}")


def decode(plaintext: bytes) -> Any:
    """Tagged plaintext → the value `encode` was given. Only authenticated plaintext reaches here."""
    read = _DECODERS.get(plaintext[:1])
    try:
        if read is None:
            raise ValueError("unknown tag")
        return read(plaintext[1:].decode())
    except ValueError:
        raise DecryptionFailed("a protected value decrypted to an unknown encoding (written by a newer "
                               "version?)") from None
