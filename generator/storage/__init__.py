"""Where the last applied generation payload is kept (LOCAL file now; S3 arrives with the cloud issue)."""

from __future__ import annotations

from typing import Any, Protocol

from generator.config import Settings
from generator.errors import StartupError
from generator.storage.local import LocalPayloadStore


class PayloadStore(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def save(self, payload: dict[str, Any]) -> None: ...


def create_store(settings: Settings) -> PayloadStore:
    if settings.storage_type == "LOCAL":
        return LocalPayloadStore(settings.payload_path)
    raise StartupError(f"SCHEMA_STORAGE_TYPE={settings.storage_type!r} is not supported; use LOCAL")
