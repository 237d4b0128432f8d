"""Decisions carry reasons (as datasette's permission answers do): a 403 says why, and tests assert it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    status: int = 403  # a denial may be a 404 where the resource's existence must not leak

    @classmethod
    def allow(cls, reason: str) -> Decision:
        return cls(True, reason)

    @classmethod
    def deny(cls, reason: str, status: int = 403) -> Decision:
        return cls(False, reason, status)
