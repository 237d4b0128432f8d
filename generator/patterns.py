"""`pattern` constraints in linear time, with RE2.

Python's `re` backtracks: `^(a+)+$` against 26 characters took 4.7 s of a worker. Payload patterns must
compile with RE2 (checked at generation), and request values are matched with it. The few patterns the
service writes itself with lookarounds (e.g. ISO durations) are fixed, known-safe, and fall back to `re`.
Pure: importable from every layer."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is reported to the client, not written to stderr


class Searcher(Protocol):
    def search(self, text: str) -> Any: ...


def compile_linear(pattern: str) -> Searcher:
    """RE2's compiled pattern; raises ValueError saying why RE2 cannot take it."""
    try:
        return _compile(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"RE2 cannot compile it ({reason}); patterns are matched in linear time, so "
                         "backreferences and lookarounds are not supported") from None


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> Searcher:
    return re2.compile(pattern, _OPTIONS)


@lru_cache(maxsize=4096)
def searcher(pattern: str) -> Searcher:
    """For request validation: RE2, or `re` for the service's own lookaround patterns."""
    try:
        return compile_linear(pattern)
    except ValueError:
        return re.compile(pattern)
