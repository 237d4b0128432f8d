"""`build_ciphers`: one `FieldCipher` per protected field of a generation, or one `InvalidPayload` listing
every field whose keys cannot be used (pointer at the field, the variable named, never its value)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from generator.crypto import blind
from generator.crypto.cipher import FieldCipher
from generator.crypto.errors import DecryptionFailed, KeyProblem, KmsError
from generator.crypto.keyring import Keyring
from generator.crypto.kms import KmsEngine
from generator.errors import InvalidPayload, Issue
from generator.payload.specs import EncryptionEntry, FieldSpec, Generation, ResourceSpec

Ciphers = dict[tuple[str, str], FieldCipher]


def build_ciphers(generation: Generation, environ: Mapping[str, str] | None = None, *,
                  wrapped_blind_keys: Mapping[tuple[str, str], bytes] | None = None,
                  kms_client: Any = None) -> Ciphers:
    """`(table, field) → FieldCipher` for every protected field; raises `InvalidPayload` (a 400).

    `wrapped_blind_keys` are the blobs persisted for searchable KMS fields by earlier generations; a field
    without one gets a new key, and its cipher says so (`blind_key_is_new`): persist `wrapped_blind_key`."""
    keyring = Keyring(os.environ if environ is None else environ, kms_client=kms_client)
    stored = wrapped_blind_keys or {}
    ciphers: Ciphers = {}
    found: list[Issue] = []
    for resource in generation.resources:
        for spec in resource.protected_fields:
            where = resource.field_pointer(spec.name)
            entry = generation.encryption_entry(resource, spec.name)
            if entry is None:
                found.append(Issue(where, f"field {resource.name}.{spec.name} is protected but no encryptionSchema "
                                          'entry covers it: add one under its name or "*" on the table, or "*" at '
                                          "data.encryptionSchema"))
                continue
            try:
                ciphers[(resource.name, spec.name)] = _cipher(keyring, resource, spec, entry,
                                                              stored.get((resource.name, spec.name)))
            except (KeyProblem, KmsError, DecryptionFailed) as exc:
                found.append(Issue(where, f"field {resource.name}.{spec.name} ({_declared(entry)}): {exc}"))
    if found:
        raise InvalidPayload(found)
    return ciphers


def _declared(entry: EncryptionEntry) -> str:
    return f"encryptionSchema entry at {entry.pointer}" if entry.pointer else "its encryptionSchema entry"


def _cipher(keyring: Keyring, resource: ResourceSpec, spec: FieldSpec, entry: EncryptionEntry,
            wrapped: bytes | None) -> FieldCipher:
    engine = keyring.engine(entry)
    if not spec.searchable:
        return FieldCipher(resource.name, spec, engine)
    if isinstance(engine, KmsEngine):
        if wrapped is not None:
            return FieldCipher(resource.name, spec, engine, (engine.unwrap_key(wrapped),), wrapped)
        key, wrapped = engine.new_blind_key()
        return FieldCipher(resource.name, spec, engine, (key,), wrapped, blind_key_is_new=True)
    keys = tuple(blind.derive_key(k.material, resource.name, spec.name) for k in keyring.raw_keys(entry))
    return FieldCipher(resource.name, spec, engine, keys)
