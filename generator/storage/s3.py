"""The payload as one private S3 object, for replicas that share no disk.

Never goes backwards, like the local file: the object's metadata records its generation id, and a save
replaces the object only with a conditional write (If-Match on the ETag read just before, or If-None-Match
for the first one), retried when another process wrote in between. S3 has honoured both since 2024; a
store that ignores them (some S3-compatible servers) leaves a small race: two saves that read the same
object can both write, the older last.

Objects are written without an ACL (private to the bucket owner) and with SSE-S3 encryption (AES256)."""

from __future__ import annotations

import errno
import json
from typing import Any

from generator.aws.clients import client
from generator.aws.errors import AWS_FAILURES, DENIED, NOT_FOUND, error_code, reason
from generator.codec import dumps
from generator.errors import StartupError

GENERATION = "generation"  # user metadata, sent as x-amz-meta-generation
CONFLICTS = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
ATTEMPTS = 5


class S3StoreError(OSError):
    """A save that failed; an `OSError` so the runtime reports it as it does a full disk."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


class S3PayloadStore:
    def __init__(self, bucket: str, key: str, region: str = "") -> None:
        self.bucket, self.key = bucket, key
        self.path = f"s3://{bucket}/{key}"  # as `LocalPayloadStore.path`: start-up messages say where
        try:
            self._s3 = client("s3", region)
        except AWS_FAILURES as exc:
            raise StartupError(f"The payload store {self.path} cannot be used: {reason(exc)}") from None

    def load(self) -> dict[str, Any] | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except AWS_FAILURES as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise StartupError(f"The saved payload {self.path} cannot be read: {reason(exc)}") from None
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise StartupError(f"The saved payload {self.path} is not JSON ({exc}); restore it or delete the "
                               "object to start with no generation") from None
        if not isinstance(payload, dict):
            raise StartupError(f"The saved payload {self.path} is not a JSON object; restore or delete it")
        return payload

    def check_writable(self) -> None:
        """Refuse to boot where a generation could be applied but never saved: the bucket must exist and
        be ours to use (AWS answers a HEAD on a bucket we may not use with 403)."""
        setting = "AWS_S3_STORAGE_BUCKET_NAME"
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except AWS_FAILURES as exc:
            code = error_code(exc)
            if code in NOT_FOUND:
                raise StartupError(f"The S3 bucket {self.bucket!r} ({setting}) does not exist: create it (private) "
                                   f"or fix {setting} and AWS_S3_REGION") from None
            if code in DENIED:
                raise StartupError(f"Access to the S3 bucket {self.bucket!r} ({setting}) is denied: grant this "
                                   f"service s3:ListBucket on it and s3:GetObject, s3:PutObject on "
                                   f"{self.path}") from None
            raise StartupError(f"The S3 bucket {self.bucket!r} ({setting}) cannot be reached: {reason(exc)}") from None

    def save(self, payload: dict[str, Any], generation_id: int) -> bool:
        """Write generation `generation_id`'s payload, unless it or a newer one is saved already."""
        body = dumps(payload)
        try:
            for _ in range(ATTEMPTS):
                saved_id, etag = self._saved()
                if generation_id <= saved_id:  # every replica adopting a generation saves it: write it once
                    return False
                if self._put(body, generation_id, etag):
                    return True
        except AWS_FAILURES as exc:
            raise S3StoreError(f"{self.path}: {reason(exc)}") from None
        raise S3StoreError(f"{self.path} changed under every one of {ATTEMPTS} attempts to write it")

    def _saved(self) -> tuple[int, str | None]:
        """The generation id and ETag of the saved object; (0, None) if there is none."""
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=self.key)
        except AWS_FAILURES as exc:
            if error_code(exc) in NOT_FOUND:
                return 0, None
            raise
        try:
            return int(head.get("Metadata", {}).get(GENERATION, 0)), head["ETag"]
        except ValueError:
            return 0, head["ETag"]  # written by hand: any generation replaces it

    def _put(self, body: bytes, generation_id: int, etag: str | None) -> bool:
        """One conditional write; False if the object changed since it was read."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json",
                                ServerSideEncryption="AES256", Metadata={GENERATION: str(generation_id)},
                                **condition)
        except AWS_FAILURES as exc:
            if error_code(exc) in CONFLICTS:
                return False
            raise
        return True
