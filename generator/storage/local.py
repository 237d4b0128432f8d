"""The payload as a JSON file, replaced atomically so a crash never leaves half a file behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from generator.codec import dumps
from generator.errors import StartupError


class LocalPayloadStore:
    def __init__(self, path: Path) -> None:
        self.path = path

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

    def save(self, payload: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".payload-", suffix=".json")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(dumps(payload))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
