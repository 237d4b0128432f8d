"""Request-body validation that reports every error with a JSON pointer, as our problems do.

Connexion's stock validator stops at the first error, says where only in prose, and compiles a new
jsonschema validator for every request; this one lists all errors and compiles once per operation."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from starlette.types import Scope

from generator.codec import loads_exact
from generator.errors import Issue, bad_request
from generator.payload.schema import pointer


def describe(error: ValidationError) -> list[Issue]:
    """Issues that point at the offending field, not at the object that holds it."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties":
        extras = set(error.instance) - set(error.schema.get("properties", {}))
        return [Issue(pointer([*where, name]), f"{name!r} is not a field of this resource") for name in sorted(extras)]
    if error.validator == "required":
        missing = [n for n in error.validator_value if n not in error.instance]
        return [Issue(pointer([*where, name]), f"{name!r} is required") for name in missing]
    return [Issue(pointer(where), error.message)]


class PointerJSONBodyValidator(JSONRequestBodyValidator):
    @cached_property
    def _validator(self) -> Draft4Validator:
        return Draft4RequestValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        if not raw:
            return None
        try:
            return loads_exact(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}") from None

    def _validate(self, body: Any) -> Any:
        if not self._nullable and body is None:
            raise bad_request("The request body must not be empty")
        issues = [issue for error in self._validator.iter_errors(body) for issue in describe(error)]
        if issues:
            raise bad_request("The request body does not match the schema", sorted(issues, key=lambda i: i.pointer))
        return body


VALIDATORS = {
    **VALIDATOR_MAP,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": PointerJSONBodyValidator}),
}
