"""RFC 6901 JSON pointers: the one place that escapes a key (`~` → `~0`, `/` → `~1`).

Every error this service reports says where with a pointer into the client's document, so a field named
`a/b` must read `/a~1b`, not `/a/b`. Pure: importable from every layer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def escape(token: Any) -> str:
    """One reference token: a key or an index."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(parts: Iterable[Any]) -> str:
    """The pointer for a path of keys and indexes (`""` is the whole document)."""
    return "".join("/" + escape(part) for part in parts)


def child(base: str, token: Any) -> str:
    """`base` extended by one key or index."""
    return f"{base}/{escape(token)}"
