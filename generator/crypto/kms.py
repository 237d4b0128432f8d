"""KMS envelope encryption (engine `AWS_AES_Engine`): values under AES-256-GCM data keys from KMS.

A data key from `GenerateDataKey` encrypts values until it is `max_age` seconds old or has encrypted
`max_uses` values, then a new one is asked for; each value stores its data key wrapped (see `envelope`).
Decryption unwraps a data key once and keeps it (at most `max_cached` of them, each for `max_age`), so
reading a table costs one KMS call per data key, not per value. Thread-safe: one lock guards both caches.

The boto3 client is made on first use (`boto3.client("kms")`), which honours `AWS_ENDPOINT_URL` and the
usual credential chain. Blind-index keys for searchable fields are random, wrapped here once
(`wrap_key`) and stored by the caller; `unwrap_key` reads them back at generation."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from generator.crypto import envelope
from generator.crypto.errors import DecryptionFailed, KmsError
from generator.crypto.keys import KEY_BYTES, fingerprint

DATA_KEY_CONTEXT = {"drg:purpose": "data-key"}  # KMS binds wrapped keys to their use
BLIND_KEY_CONTEXT = {"drg:purpose": "blind-index-key"}
MAX_AGE_S = 300.0
MAX_USES = 2**20
MAX_CACHED = 1000


@dataclass
class _DataKey:
    aead: AESGCM
    wrapped: bytes
    born: float
    uses: int = 0


class KmsEngine:
    """Encrypts under data keys of the current KMS key; decrypts those of previous KMS keys too."""

    kind = envelope.KMS_DATA_KEY

    def __init__(self, reference: str, previous: Sequence[str] = (), *, client: Any = None,
                 max_age: float = MAX_AGE_S, max_uses: int = MAX_USES, max_cached: int = MAX_CACHED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.reference = reference
        self.references = {fingerprint(ref.encode()): ref for ref in (*reversed(previous), reference)}
        self.key_id = fingerprint(reference.encode())
        self.max_age, self.max_uses, self.max_cached, self.clock = max_age, max_uses, max_cached, clock
        self._client = client
        self._lock = threading.Lock()
        self._current: _DataKey | None = None
        self._unwrapped: OrderedDict[bytes, _DataKey] = OrderedDict()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # late: only KMS-protected generations need it

            self._client = boto3.client("kms")
        return self._client

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        data_key = self._data_key()
        head = envelope.header(self.kind, self.key_id, data_key.wrapped)
        nonce = os.urandom(envelope.NONCE_BYTES)
        return head + nonce + data_key.aead.encrypt(nonce, plaintext, head + aad)

    def decrypt(self, stored: bytes, aad: bytes) -> bytes:
        sealed = envelope.parse(stored)
        if sealed.kind != self.kind:
            raise DecryptionFailed("the value was not written by the KMS engine this field uses")
        aead = self._unwrap(sealed.key_id, sealed.wrapped)
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, sealed.header + aad)
        except InvalidTag:
            raise DecryptionFailed("the value does not authenticate: tampered, or copied from another row or "
                                   "column") from None

    def encrypt_many(self, plaintexts: Sequence[bytes], prefix: bytes, suffixes: Sequence[bytes]) -> list[bytes]:
        """`encrypt` per value (the data key is cached, so no KMS call per value either way)."""
        return [self.encrypt(plaintext, prefix + suffix) for plaintext, suffix in zip(plaintexts, suffixes,
                                                                                     strict=True)]

    def decrypt_many(self, stored: Sequence[bytes | None], prefix: bytes, suffixes: Sequence[bytes]
                     ) -> list[bytes | None]:
        return [None if data is None else self.decrypt(bytes(data), prefix + suffix)
                for data, suffix in zip(stored, suffixes, strict=True)]

    def _data_key(self) -> _DataKey:
        with self._lock:
            key = self._current
            if key is None or key.uses >= self.max_uses or self.clock() - key.born >= self.max_age:
                answer = self._call("generate_data_key", KeyId=self.reference, KeySpec="AES_256",
                                    EncryptionContext=DATA_KEY_CONTEXT)
                key = _DataKey(AESGCM(answer["Plaintext"]), answer["CiphertextBlob"], self.clock())
                self._current = key
                self._remember(key)
            key.uses += 1
            return key

    def _unwrap(self, key_id: bytes, wrapped: bytes) -> AESGCM:
        with self._lock:
            cached = self._unwrapped.get(wrapped)
            if cached is not None and self.clock() - cached.born < self.max_age:
                self._unwrapped.move_to_end(wrapped)
                return cached.aead
        plaintext = self._decrypt_key(key_id, wrapped, DATA_KEY_CONTEXT)
        key = _DataKey(AESGCM(plaintext), wrapped, self.clock())
        with self._lock:
            self._remember(key)
        return key.aead

    def _remember(self, key: _DataKey) -> None:
        """Keep an unwrapped data key (the lock is held), dropping the least recently used beyond the bound."""
        self._unwrapped[key.wrapped] = key
        self._unwrapped.move_to_end(key.wrapped)
        while len(self._unwrapped) > self.max_cached:
            self._unwrapped.popitem(last=False)

    def _decrypt_key(self, key_id: bytes, wrapped: bytes, context: dict[str, str]) -> bytes:
        reference = self.references.get(key_id)
        if reference is None:
            raise DecryptionFailed(f"the value was written under KMS key id {key_id.hex()}, which is not this "
                                   "field's key nor one of its previousKeys")
        try:
            answer = self._call("decrypt", CiphertextBlob=wrapped, KeyId=reference, EncryptionContext=context)
        except KmsError as exc:
            if "InvalidCiphertext" in str(exc) or "IncorrectKey" in str(exc):
                raise DecryptionFailed("KMS refused the value's wrapped data key (tampered or another key's)") \
                    from None
            raise
        if len(answer["Plaintext"]) != KEY_BYTES:
            raise DecryptionFailed("KMS returned a key of the wrong size for the value's wrapped data key")
        return answer["Plaintext"]

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**arguments)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise KmsError(f"KMS {operation} failed ({code}) for key {self.reference}") from None
        except BotoCoreError as exc:
            raise KmsError(f"KMS {operation} failed: {type(exc).__name__}") from None

    def wrap_key(self, key: bytes) -> bytes:
        """`key` wrapped by the current KMS key, as a self-describing blob (`envelope` kind 3) to persist."""
        answer = self._call("encrypt", KeyId=self.reference, Plaintext=key, EncryptionContext=BLIND_KEY_CONTEXT)
        return envelope.header(envelope.KMS_WRAPPED, self.key_id, answer["CiphertextBlob"])

    def unwrap_key(self, blob: bytes) -> bytes:
        """A key `wrap_key` wrapped (under the current or a previous KMS key); `DecryptionFailed` otherwise."""
        sealed = envelope.parse(blob)
        if sealed.kind != envelope.KMS_WRAPPED or sealed.body:
            raise DecryptionFailed("not a key wrapped by this service's KMS engine")
        return self._decrypt_key(sealed.key_id, sealed.wrapped, BLIND_KEY_CONTEXT)

    def new_blind_key(self) -> tuple[bytes, bytes]:
        """A random 256-bit blind-index key and its wrapped blob (persist the blob, never the key)."""
        key = os.urandom(KEY_BYTES)
        return key, self.wrap_key(key)

    def rewrap_key(self, blob: bytes) -> bytes:
        """The same key wrapped under the current KMS key (after a KMS key change); no re-index needed."""
        return self.wrap_key(self.unwrap_key(blob))
