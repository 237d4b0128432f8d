"""The admin app's (Connexion's) request validation, reporting every error with a JSON pointer as our problems
do, with the data plane's parsing and schema rules (`bodies.py`).

Connexion's stock validator stops at the first error, says where only in prose, and compiles a new
jsonschema validator for every request; this one lists all errors and compiles once per operation.

Two guards keep one request from stalling a worker: `pattern` is matched with RE2 (linear time), and a body
larger than `OFF_LOOP_BYTES` is parsed and validated in a worker thread, so the event loop keeps answering
other requests (`/health` included) meanwhile."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from generator.api.bodies import OFF_LOOP_BYTES, OpenApiValidator, describe, parse
from generator.errors import Issue, bad_request
from generator.pointers import pointer


class PointerJSONBodyValidator(JSONRequestBodyValidator):
    _checked = False  # set when the body was validated off the loop together with parsing

    @cached_property
    def _validator(self) -> Draft4Validator:
        return OpenApiValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        if len(raw) > OFF_LOOP_BYTES:
            body = await run_in_threadpool(self._parse_and_validate, raw)
        else:
            body = self._decode(raw)
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
        return parse(raw)

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
            validator = self._compiled[(location, name)] = OpenApiValidator(
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
