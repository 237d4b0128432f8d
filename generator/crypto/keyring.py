"""Which engine and keys protect a field: the `encryptionSchema` lookup, engine names, the environment.

Lookup order (`Generation.encryption_entry`): the field's own name, then its table's "*", then the global
"*" at `data.encryptionSchema`. Engines share by configuration: fields with the same engine, key and
previous keys get one engine object, so a KMS data key serves all of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.crypto.aes_gcm import AesGcmEngine
from generator.crypto.cipher import Engine
from generator.crypto.errors import KeyProblem
from generator.crypto.keys import RawKey, read_key, read_reference
from generator.crypto.kms import KmsEngine
from generator.payload.specs import EncryptionEntry

AES_GCM, KMS = "aes-gcm", "kms"
ENGINE_NAMES = {"AES_256_GCM": AES_GCM, "AES_GCM_Engine": AES_GCM, "AWS_AES_Engine": KMS}  # the reference's
_FOLDED = {name.casefold(): kind for name, kind in ENGINE_NAMES.items()}


def engine_kind(name: str) -> str:
    """`AES_256_GCM`/`AES_GCM_Engine` → "aes-gcm", `AWS_AES_Engine` → "kms" (any case); KeyProblem else."""
    kind = _FOLDED.get(name.strip().casefold())
    if kind is None:
        raise KeyProblem(f"unknown encryption engine {name!r}; use one of {', '.join(ENGINE_NAMES)}")
    return kind


class Keyring:
    """Engines built from entries and an environment, one per distinct configuration."""

    def __init__(self, environ: Mapping[str, str], *, kms_client: Any = None) -> None:
        self.environ = environ
        self.kms_client = kms_client
        self._engines: dict[tuple[str, str, tuple[str, ...]], Engine] = {}

    def engine(self, entry: EncryptionEntry) -> Engine:
        """The engine for `entry`; `KeyProblem` naming the variable at fault (never its value)."""
        kind = engine_kind(entry.type)
        wanted = (kind, entry.key, entry.previous_keys)
        if wanted not in self._engines:
            self._engines[wanted] = self._build(kind, entry)
        return self._engines[wanted]

    def raw_keys(self, entry: EncryptionEntry) -> tuple[RawKey, ...]:
        """Current key first, then previous ones (raw-key engines only)."""
        return tuple(read_key(name, self.environ) for name in (entry.key, *entry.previous_keys))

    def _build(self, kind: str, entry: EncryptionEntry) -> Engine:
        if kind == KMS:
            current, *previous = (read_reference(name, self.environ) for name in (entry.key, *entry.previous_keys))
            return KmsEngine(current, previous, client=self.kms_client)
        current_key, *previous_keys = self.raw_keys(entry)
        return AesGcmEngine(current_key, previous_keys)
