"""AES-256-GCM under raw keys from the environment (engines `AES_256_GCM`, `AES_GCM_Engine`).

A random 96-bit nonce per value: NIST SP 800-38D bounds one key to 2^32 such encryptions, far beyond a
table's writes between rotations. The envelope header is part of the associated data (see `envelope`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from generator.crypto import envelope
from generator.crypto.errors import DecryptionFailed
from generator.crypto.keys import KEY_ID_BYTES, RawKey

_VERSION, _KIND = bytes((envelope.VERSION,)), bytes((envelope.AES_GCM,))
_HEADER = 2 + KEY_ID_BYTES  # version, kind, key id: a kind-1 header
_BODY = _HEADER + envelope.NONCE_BYTES


class AesGcmEngine:
    """Encrypts under the current key; decrypts under it or any previous key, picked by key id."""

    kind = envelope.AES_GCM

    def __init__(self, current: RawKey, previous: Sequence[RawKey] = ()) -> None:
        self.current = current
        self.key_id = current.id
        self.keys = {key.id: key for key in (*reversed(previous), current)}
        self._aead = {key_id: AESGCM(key.material) for key_id, key in self.keys.items()}
        self._header = envelope.header(self.kind, current.id)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(envelope.NONCE_BYTES)
        return self._header + nonce + self._aead[self.current.id].encrypt(nonce, plaintext, self._header + aad)

    def decrypt(self, stored: bytes, aad: bytes) -> bytes:
        data = bytes(stored)
        aead = self._aead.get(data[2:_HEADER]) if data[:1] == _VERSION and data[1:2] == _KIND else None
        if aead is not None and len(data) >= _HEADER + envelope.NONCE_BYTES + envelope.TAG_BYTES:
            # the common case, without building an Envelope: header, nonce, ciphertext and tag by position
            try:
                return aead.decrypt(data[_HEADER:_BODY], data[_BODY:], data[:_HEADER] + aad)
            except InvalidTag:
                raise DecryptionFailed("the value does not authenticate: tampered, or copied from another row or "
                                       "column") from None
        sealed = envelope.parse(data)
        if sealed.kind != self.kind:
            raise DecryptionFailed("the value was written by another engine (KMS) than this field's (AES-256-GCM)")
        aead = self._aead.get(sealed.key_id)
        if aead is None:
            raise DecryptionFailed(f"the value was written under key id {sealed.key_id.hex()}, which is not this "
                                   "field's key nor one of its previousKeys")
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, sealed.header + aad)
        except InvalidTag:
            raise DecryptionFailed("the value does not authenticate: tampered, or copied from another row or "
                                   "column") from None
