"""Where the last applied generation payload is kept (LOCAL file now; S3 arrives with the cloud issue)."""

from __future__ import annotations

from typing import Any, Protocol

from generator.config import Settings
from generator.errors import StartupError
from generator.storage.local import LocalPayloadStore


class PayloadStore(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def save(self, payload: dict[str, Any], generation_id: int) -> bool:
        """Save generation `generation_id`'s payload unless a newer one is saved; True if written."""

    def check_writable(self) -> None:
        """Raise `StartupError` saying what to fix if saving cannot work."""


def create_store(settings: Settings) -> PayloadStore:
    if settings.storage_type == "LOCAL":
        return LocalPayloadStore(settings.payload_path)
    raise StartupError(f"SCHEMA_STORAGE_TYPE={settings.storage_type!r} is not supported; use LOCAL")
