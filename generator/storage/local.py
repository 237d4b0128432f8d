"""The payload as a JSON file, replaced atomically so a crash never leaves half a file behind.

Several processes may save (the one that applied a generation, and followers that adopt it). Saves are
serialised by a lock file, and a sidecar (`<file>.generation`) records which generation the file holds, so
the saved payload never goes backwards: a follower that adopts generation 1 late cannot overwrite 2."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generator.codec import dumps
from generator.errors import StartupError


class LocalPayloadStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._generation = path.with_name(path.name + ".generation")
        self._lock = path.with_name(path.name + ".lock")

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            payload = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise StartupError(f"The saved payload {self.path} cannot be read ({exc}); "
                               "restore it or delete it to start with no generation") from None
        if not isinstance(payload, dict):
            raise StartupError(f"The saved payload {self.path} is not a JSON object; restore or delete it")
        return payload

    def check_writable(self) -> None:
        """Refuse to boot where a generation could be applied but never saved."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=".payload-check-"):
                pass
            with self._locked():
                pass
        except OSError as exc:
            raise StartupError(f"The payload file {self.path} cannot be written ({exc.strerror}). Point "
                               "PAYLOAD_PATH at a writable location or fix the folder's permissions.") from None

    def save(self, payload: dict[str, Any], generation_id: int) -> bool:
        """Write the payload of generation `generation_id`, unless a newer one is saved already."""
        with self._locked():
            if generation_id < self._saved_generation():
                return False
            self._replace(self.path, dumps(payload))
            self._replace(self._generation, str(generation_id).encode())
            return True

    def _saved_generation(self) -> int:
        try:
            return int(self._generation.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".payload-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
