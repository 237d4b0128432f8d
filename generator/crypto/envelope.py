"""The stored form of a protected value: versioned and self-describing, so keys can rotate.

    byte 0      format version (1)
    byte 1      kind: 1 AES-256-GCM under a raw key, 2 AES-256-GCM under a KMS data key,
                3 a key wrapped by KMS (a blind-index key, not a value)
    bytes 2-9   key id: fingerprint of the raw key, or of the KMS key reference (`keys.fingerprint`)
    kind 2, 3   2 bytes big-endian length n, then n bytes of KMS `CiphertextBlob` (the wrapped data key)
    then        12-byte nonce (kinds 1 and 2), ciphertext, 16-byte GCM tag

Everything before the nonce (the header) is part of the associated data, so a changed version, kind, key id
or wrapped key fails decryption like a changed ciphertext. Overhead: 38 bytes for kind 1; 40 bytes plus the
wrapped data key (about 150-200 bytes from AWS KMS) for kind 2. `to_text` adds base64's third."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from generator.crypto.errors import DecryptionFailed
from generator.crypto.keys import KEY_ID_BYTES

VERSION = 1
AES_GCM, KMS_DATA_KEY, KMS_WRAPPED = 1, 2, 3
NONCE_BYTES, TAG_BYTES = 12, 16
_WRAPPED_KINDS = frozenset({KMS_DATA_KEY, KMS_WRAPPED})
_FIXED = 2 + KEY_ID_BYTES


@dataclass(frozen=True)
class Envelope:
    kind: int
    key_id: bytes
    wrapped: bytes  # the KMS-wrapped key of kinds 2 and 3; b"" for kind 1
    body: bytes  # nonce + ciphertext + tag (kinds 1, 2); the KMS blob's remainder is empty for kind 3

    @property
    def header(self) -> bytes:
        return header(self.kind, self.key_id, self.wrapped)

    @property
    def nonce(self) -> bytes:
        return self.body[:NONCE_BYTES]

    @property
    def ciphertext(self) -> bytes:
        return self.body[NONCE_BYTES:]


def header(kind: int, key_id: bytes, wrapped: bytes = b"") -> bytes:
    prefix = bytes((VERSION, kind)) + key_id
    return prefix + len(wrapped).to_bytes(2, "big") + wrapped if kind in _WRAPPED_KINDS else prefix


def parse(stored: bytes) -> Envelope:
    """Split a stored value; `DecryptionFailed` when it is not one this version wrote."""
    data = bytes(stored)
    if len(data) < _FIXED or data[0] != VERSION or data[1] not in (AES_GCM, *_WRAPPED_KINDS):
        raise DecryptionFailed("not a protected value written by this service (unknown format version or kind)")
    kind, key_id, rest = data[1], data[2:_FIXED], data[_FIXED:]
    wrapped = b""
    if kind in _WRAPPED_KINDS:
        size = int.from_bytes(rest[:2], "big") if len(rest) >= 2 else -1
        if size < 0 or len(rest) < 2 + size:
            raise DecryptionFailed("a protected value is truncated (its wrapped key is incomplete)")
        wrapped, rest = rest[2 : 2 + size], rest[2 + size :]
    if kind != KMS_WRAPPED and len(rest) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionFailed("a protected value is truncated (no room for its nonce and tag)")
    return Envelope(kind, key_id, wrapped, rest)


def key_id(stored: bytes) -> bytes:
    """The id of the key a stored value was written under."""
    return parse(stored).key_id


def to_text(stored: bytes) -> str:
    """Standard base64, for a TEXT column."""
    return base64.b64encode(stored).decode("ascii")


def from_text(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionFailed("a protected value is not valid base64") from None
