"""Request-body validation that reports every error with a JSON pointer, as our problems do.

Connexion's stock validator stops at the first error, says where only in prose, and compiles a new
jsonschema validator for every request; this one lists all errors and compiles once per operation.

Two guards keep one request from stalling a worker: `pattern` is matched with RE2 (linear time), and a body
larger than `OFF_LOOP_BYTES` is parsed and validated in a worker thread, so the event loop keeps answering
other requests (`/health` included) meanwhile. The parsed body is left in the scope (`BODY_KEY`) for the
handler, which then need not parse it again."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from generator.codec import OutOfRange, loads_exact
from generator.errors import Issue, bad_request
from generator.patterns import searcher
from generator.pointers import pointer

BODY_KEY = "drg.body"  # the parsed request body, in the ASGI scope
OFF_LOOP_BYTES = 64 * 1024  # smaller bodies parse in well under a millisecond: a thread hop would cost more


def _linear_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    if isinstance(instance, str) and not searcher(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


BodyValidator = extend(Draft4RequestValidator, {"pattern": _linear_pattern})
ValueValidator = extend(Draft4Validator, {"pattern": _linear_pattern})


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
    _checked = False  # set when the body was validated off the loop together with parsing

    @cached_property
    def _validator(self) -> Draft4Validator:
        return BodyValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        if len(raw) > OFF_LOOP_BYTES:
            body = await run_in_threadpool(self._parse_and_validate, raw)
        else:
            body = self._decode(raw)
        scope[BODY_KEY] = body
        return body

    def _parse_and_validate(self, raw: bytes) -> Any:
        body = self._decode(raw)
        if not (body is None and self._nullable):
            self._check(body)
        self._checked = True
        return body

    def _decode(self, raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return loads_exact(raw)
        except OutOfRange as exc:
            raise bad_request("A number is beyond the range this service stores (±1.8e308)",
                              [Issue(p, "number beyond ±1.7976931348623157e308") for p in exc.pointers]) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"The request body is not valid JSON: {exc}") from None

    def _validate(self, body: Any) -> Any:
        if not self._checked:
            self._check(body)
        return body

    def _check(self, body: Any) -> None:
        if not self._nullable and body is None:
            raise bad_request("The request body must not be empty")
        issues = [issue for error in self._validator.iter_errors(body) for issue in describe(error)]
        if issues:
            raise bad_request("The request body does not match the schema", sorted(issues, key=lambda i: i.pointer))


SOURCES = {"query": "query_params", "path": "path_params", "header": "headers", "cookie": "cookies"}


class PointerParameterValidator(ParameterValidator):
    """All parameter errors at once, each pointing at `/query/<name>` or `/path/<name>`.

    Connexion's own deep-copies each parameter and compiles a new validator on every request; this one
    compiles each parameter's schema once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compiled: dict[tuple[str, str], Draft4Validator] = {}

    def _check(self, location: str, param: dict[str, Any], value: Any) -> list[Issue]:
        name = param["name"]
        if value is None:
            return [Issue(pointer([location, name]), f"{location} parameter {name!r} is required")] if param.get(
                "required") else []
        if is_nullable(param) and is_null(value):
            return []
        validator = self._compiled.get((location, name))
        if validator is None:
            schema = param.get("schema", param)
            validator = self._compiled[(location, name)] = ValueValidator(
                schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        return [Issue(pointer([location, name, *e.absolute_path]), f"{name}: {e.message}")
                for e in validator.iter_errors(value)]  # fmt: skip

    def validate_request(self, request: Any) -> None:
        issues: list[Issue] = []
        if self.strict_validation and request.scope.get("query_string"):
            extra = self.validate_query_parameter_list(request, security_params=self.security_query_params)
            issues += [Issue(pointer(["query", n]), f"unknown query parameter {n!r}") for n in sorted(extra)]
        for location, source in SOURCES.items():
            declared = self.parameters.get(location)
            if declared:  # only build what is declared: headers and cookies are parsed on first access
                values = getattr(request, source)
                for param in declared:
                    issues += self._check(location, param, values.get(param["name"]))
        if issues:
            raise bad_request("The request parameters are invalid", issues)


VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": PointerParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": PointerJSONBodyValidator}),
}
