"""Two error families (as in connexion): start-up errors stop boot with a message that says what to do;
HTTP problems are rendered as RFC 7807 `application/problem+json` by Connexion's exception middleware."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connexion.exceptions import ProblemException


class GeneratorError(Exception):
    """Base of every error this package raises on purpose."""


class StartupError(GeneratorError):
    """The service cannot start; the message tells the operator what to do."""


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a client's input: where (a JSON pointer) and what."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class InvalidPayload(GeneratorError):
    """A generation payload failed validation; carries every issue found, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(f"{i.pointer or '/'}: {i.message}" for i in issues))
        self.issues = issues


class Problem(ProblemException, GeneratorError):
    """An HTTP problem. `errors` lists `{pointer, message}` when input was invalid.

    A long list is cut to `max_errors` items (set from `Settings.max_error_items` at start-up) and says so
    in `errors_total`: a body with 20,000 unknown keys must not get a 1.5 MB answer."""

    max_errors = 100

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[Issue] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        ext: dict[str, Any] = dict(extra or {})
        if errors:
            ext["errors"] = [e.as_dict() for e in errors[: self.max_errors]]
            if len(errors) > self.max_errors:
                ext["errors_total"] = len(errors)
                detail = f"{detail} (the first {self.max_errors} of {len(errors)} errors are listed)"
        super().__init__(status=status, title=title, detail=detail, ext=ext or None, headers=headers)


def bad_request(detail: str, errors: list[Issue] | None = None) -> Problem:
    return Problem(400, "Bad Request", detail, errors=errors)


def not_found(detail: str) -> Problem:
    return Problem(404, "Not Found", detail)


def conflict(detail: str, **extra: Any) -> Problem:
    return Problem(409, "Conflict", detail, extra=extra)
