"""Where the last applied generation payload is kept: a LOCAL file (default) or an S3 object."""

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
    """The store SCHEMA_STORAGE_TYPE names; a missing setting or an unknown type stops the start-up."""
    if settings.storage_type == "LOCAL":
        return LocalPayloadStore(settings.payload_path)
    if settings.storage_type == "S3":
        if not settings.s3_bucket:
            raise StartupError("SCHEMA_STORAGE_TYPE=S3 needs AWS_S3_STORAGE_BUCKET_NAME: the bucket that keeps "
                               "the payload")
        from generator.storage.s3 import S3PayloadStore  # boto3 loads only when S3 is chosen

        return S3PayloadStore(settings.s3_bucket, settings.s3_object_name, settings.s3_region)
    raise StartupError(f"SCHEMA_STORAGE_TYPE={settings.storage_type!r} is not supported; use LOCAL or S3")
