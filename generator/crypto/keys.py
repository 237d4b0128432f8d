"""Key material from the environment: a 256-bit key written as standard base64 or 64 hexadecimal digits.

A key is known elsewhere only by its id, a fingerprint (the first 8 bytes of its SHA-256): stored values
carry it so the right key is picked on decryption, and it reveals nothing usable about the key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from generator.crypto.errors import KeyProblem

KEY_BYTES = 32
KEY_ID_BYTES = 8
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def fingerprint(material: bytes) -> bytes:
    """The id of a key (or of a KMS key reference): 8 bytes of SHA-256."""
    return hashlib.sha256(material).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True)
class RawKey:
    """A 256-bit key and where it came from. `repr` never shows the material."""

    variable: str
    material: bytes = field(repr=False)

    @property
    def id(self) -> bytes:
        return fingerprint(self.material)


def decode_key(text: str) -> bytes:
    """64 hex digits or standard base64 of 32 bytes → the key; ValueError (without the text) otherwise."""
    text = text.strip()
    if _HEX.fullmatch(text):
        return bytes.fromhex(text)
    try:
        material = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("it is neither standard base64 nor 64 hexadecimal digits") from None
    if len(material) != KEY_BYTES:
        raise ValueError(f"it decodes to {len(material)} bytes, not {KEY_BYTES}")
    return material


def read_key(variable: str, environ: Mapping[str, str]) -> RawKey:
    """The raw key held by environment variable `variable`; `KeyProblem` names the variable, never the value."""
    text = environ.get(variable)
    if text is None or not text.strip():
        raise KeyProblem(f"environment variable {variable} is not set (it must hold a 256-bit key)")
    try:
        return RawKey(variable, decode_key(text))
    except ValueError as exc:
        raise KeyProblem(f"environment variable {variable} does not hold a 256-bit key: {exc}; write 32 random "
                         "bytes as standard base64 (44 characters) or as 64 hexadecimal digits") from None


def read_reference(variable: str, environ: Mapping[str, str]) -> str:
    """A KMS key id, ARN or alias held by `variable`; `KeyProblem` when unset or not one word."""
    text = (environ.get(variable) or "").strip()
    if not text:
        raise KeyProblem(f"environment variable {variable} is not set (it must hold a KMS key id, ARN or alias)")
    if any(c.isspace() for c in text) or len(text) > 2048:
        raise KeyProblem(f"environment variable {variable} does not hold a KMS key id, ARN or alias")
    return text
