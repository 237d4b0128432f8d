"""Errors in the ODM Platform's format: `{status, code, description, message, path}` (the seed's "Errors").

Codes are the HTTP status followed by two digits; the ones every route may answer:

| code | when |
|---|---|
| 40000 | the request body is not readable (not JSON, not an object) |
| 40001 | the body is JSON but not what the route takes (a field missing or of the wrong type) |
| 40002 | a query or path parameter is not valid (an id that is not an integer, an unknown status) |
| 40003 | a data product descriptor is not valid (its `lifecycle` block, an unknown `executorRef`) |
| 40055 | an action that the route does not know (`action=` other than START / ABORT, or STOP) |
| 40101 / 40301 | no credentials / not the product's owner team, an admin, or a writer |
| 40401 … 40405 | activity, task, data product, data product version, lifecycle not found; 40400: no such route |
| 40501 | the method is not one of the route's |
| 40601 / 41501 | the `Accept` / `Content-Type` is not an ODMP media type |
| 40901 | another activity of the same product version is PROCESSING |
| 40902 | an illegal state transition (the message says the current state) |
| 40903 | the product version is immutable: an activity ran on it |
| 42201 | the activity names a stage or version the product does not have |
| 50001 | an unexpected error (logged with its traceback, never its secrets) |"""

from __future__ import annotations

from typing import Any

from generator.errors import GeneratorError


class OdmProblem(GeneratorError):
    """An HTTP error answered in the seed's format; `path` is filled in by the app from the request."""

    def __init__(self, status: int, code: int, description: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.description, self.message = status, code, description, message

    def body(self, path: str) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "description": self.description,
                "message": self.message, "path": path}


def bad_body(message: str) -> OdmProblem:
    return OdmProblem(400, 40001, "Request body is not valid", message)


def bad_parameter(message: str) -> OdmProblem:
    return OdmProblem(400, 40002, "Request parameter is not valid", message)


def not_found(code: int, description: str, message: str) -> OdmProblem:
    return OdmProblem(404, code, description, message)
