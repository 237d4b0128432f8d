"""AES-256-GCM under raw keys from the environment (engines `AES_256_GCM`, `AES_GCM_Engine`).

A random 96-bit nonce per value: NIST SP 800-38D bounds one key to 2^32 such encryptions, far beyond a
table's writes between rotations. The envelope header is part of the associated data (see `envelope`).

`encrypt_many`/`decrypt_many` do the same per value for a column of a page or a bulk write, with what does
not change between values (the header, the associated data's column prefix, the AESGCM object) looked up
once: at about 1 µs of OpenSSL per value, a value's Python overhead is what a page of 500 values costs.
The nonces of a batch come from one `os.urandom` call, cut into 12-byte pieces: each is still 96 bits of
the operating system's CSPRNG, independent of the others, only without a system call per value."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from generator.crypto import envelope
from generator.crypto.errors import DecryptionFailed
from generator.crypto.keys import KEY_ID_BYTES, RawKey

_HEADER = 2 + KEY_ID_BYTES  # version, kind, key id: a kind-1 header
_BODY = _HEADER + envelope.NONCE_BYTES
_SHORTEST = _BODY + envelope.TAG_BYTES
_NONCE = envelope.NONCE_BYTES
NOT_AUTHENTIC = "the value does not authenticate: tampered, or copied from another row or column"

# header of a value written under one of the field's keys → (that key's AESGCM.decrypt, header + column prefix)
Openers = dict[bytes, tuple[Callable[[bytes, bytes, bytes], bytes], bytes]]


class AesGcmEngine:
    """Encrypts under the current key; decrypts under it or any previous key, picked by key id."""

    kind = envelope.AES_GCM

    def __init__(self, current: RawKey, previous: Sequence[RawKey] = ()) -> None:
        self.current = current
        self.key_id = current.id
        self.keys = {key.id: key for key in (*reversed(previous), current)}
        self._aead = {key_id: AESGCM(key.material) for key_id, key in self.keys.items()}
        self._header = envelope.header(self.kind, self.key_id)
        self._seal = self._aead[self.key_id].encrypt
        self._openers: dict[bytes, Openers] = {}  # per associated-data prefix (one per protected column)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return self._header + nonce + self._seal(nonce, plaintext, self._header + aad)

    def encrypt_many(self, plaintexts: Sequence[bytes], prefix: bytes, suffixes: Sequence[bytes]) -> list[bytes]:
        """`encrypt(plaintext, prefix + suffix)` for each pair, the same bytes but for the random nonces."""
        header, seal = self._header, self._seal
        aad = header + prefix
        nonces = os.urandom(_NONCE * len(plaintexts))
        sealed = []
        for at, plaintext, suffix in zip(range(0, len(nonces), _NONCE), plaintexts, suffixes, strict=True):
            nonce = nonces[at:at + _NONCE]
            sealed.append(header + nonce + seal(nonce, plaintext, aad + suffix))
        return sealed

    def decrypt(self, stored: bytes, aad: bytes) -> bytes:
        data = bytes(stored)
        found = self._openers_of(b"").get(data[:_HEADER]) if len(data) >= _SHORTEST else None
        if found is not None:  # the common case, without building an Envelope: parts by position
            try:
                return found[0](data[_HEADER:_BODY], data[_BODY:], found[1] + aad)
            except InvalidTag:
                raise DecryptionFailed(NOT_AUTHENTIC) from None
        return self._decrypt_parsed(data, aad)

    def decrypt_many(self, stored: Sequence[bytes | None], prefix: bytes, suffixes: Sequence[bytes]
                     ) -> list[bytes | None]:
        """`decrypt(value, prefix + suffix)` for each pair (None stays None); `DecryptionFailed` on the first
        value that does not authenticate, as `decrypt` would."""
        openers = self._openers.get(prefix) or self._openers_of(prefix)
        plaintexts: list[bytes | None] = []
        append = plaintexts.append
        for data, suffix in zip(stored, suffixes, strict=True):
            try:  # by position, as `decrypt`; None, another kind or key, a short or forged value leave here
                open_, aad = openers[data[:_HEADER]]  # type: ignore[index]
                append(open_(data[_HEADER:_BODY], data[_BODY:], aad + suffix))  # type: ignore[index]
            except (KeyError, TypeError, InvalidTag):  # the slow path says which (or keeps a NULL)
                append(None if data is None else self._decrypt_parsed(bytes(data), prefix + suffix))
        return plaintexts

    def _openers_of(self, prefix: bytes) -> Openers:
        openers = self._openers.get(prefix)
        if openers is None:
            openers = {}
            for key_id, aead in self._aead.items():
                header = envelope.header(self.kind, key_id)
                openers[header] = (aead.decrypt, header + prefix)
            self._openers[prefix] = openers
        return openers

    def _decrypt_parsed(self, data: bytes, aad: bytes) -> bytes:
        """Any stored value, parsed in full: the errors name what is wrong (kind, key, truncation)."""
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
            raise DecryptionFailed(NOT_AUTHENTIC) from None
