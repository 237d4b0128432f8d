"""Request bodies of the data plane: JSON only, parsed exactly, validated against the served document.

The schema each operation validates with is the one `/openapi.json` shows (resolved from the document
itself, compiled once per operation), so what Swagger UI and generated clients are told is what is
enforced. Validation lists every error with a JSON pointer; `pattern` runs on RE2 (linear time); OpenAPI's
`nullable` is honoured. A body over `OFF_LOOP_BYTES` is parsed and validated in a worker thread, so a big
upload never stalls the event loop. The dispatcher has already refused bodies over the size limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from generator.api.fastcheck import FastValidator
from generator.codec import NulCharacter, OutOfRange, loads_exact
from generator.errors import Issue, Problem, bad_request
from generator.patterns import searcher
from generator.pointers import pointer

DOCUMENT_URI = "urn:drg:served-document"
OFF_LOOP_BYTES = 64 * 1024  # smaller bodies parse in well under a millisecond: a thread hop would cost more


def _nullable(check: Any) -> Any:
    def nullable_aware(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if instance is None and schema.get("nullable") is True:
            return
        yield from check(validator, value, instance, schema)

    return nullable_aware


def _linear_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if isinstance(instance, str) and not searcher(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _one_of(validator: Any, branches: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """`oneOf`, unless the schema says a converter checks the value (`x-checked-by`): GeoJSON's shape is
    documented as a `oneOf` for clients, but the field's converter says precisely what is wrong, where a
    failed `oneOf` can only say that no branch matched."""
    if "x-checked-by" in schema:
        return
    yield from Draft4Validator.VALIDATORS["oneOf"](validator, branches, instance, schema)


OpenApiValidator = extend(Draft4Validator, {
    "type": _nullable(Draft4Validator.VALIDATORS["type"]),
    "enum": _nullable(Draft4Validator.VALIDATORS["enum"]),
    "pattern": _linear_pattern,
    "oneOf": _one_of,
})  # fmt: skip


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


class BodySchemas:
    """Compiled validators for the request bodies of one served document."""

    def __init__(self, document: dict[str, Any]) -> None:
        resource = Resource.from_contents(document, default_specification=DRAFT4)
        self.registry: Registry = Registry().with_resource(DOCUMENT_URI, resource)

    def validator(self, schema: dict[str, Any]) -> Any:
        """A validator for `schema`, whose `#/...` references point into the served document; values the
        compiled fast path accepts skip jsonschema's walk (see `fastcheck`)."""
        full = OpenApiValidator(_anchored(schema), registry=self.registry,
                                format_checker=Draft4Validator.FORMAT_CHECKER)
        return FastValidator(full, schema)


def _anchored(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: DOCUMENT_URI + value if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _anchored(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_anchored(item) for item in schema]
    return schema


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_body(request: Request, validator: Any) -> Any:
    """The request's JSON body, validated; a 400/415 problem otherwise."""
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if not raw:
        raise bad_request("The request body must not be empty")
    if not _is_json(content_type):
        raise Problem(415, "Unsupported Media Type", f"Send the body as application/json, not {content_type!r}")
    if len(raw) > OFF_LOOP_BYTES:
        return await run_in_threadpool(checked, raw, validator)
    return checked(raw, validator)


def checked(raw: bytes, validator: Any) -> Any:
    body = parse(raw)
    issues = [issue for error in validator.iter_errors(body) for issue in describe(error)]
    if issues:
        raise bad_request("The request body does not match the schema", sorted(issues, key=lambda i: i.pointer))
    return body


def parse(raw: bytes) -> Any:
    try:
        return loads_exact(raw)
    except NulCharacter as exc:
        raise bad_request(f"A string cannot be stored: {exc}", [Issue(p, exc.reason) for p in exc.pointers]) from None
    except OutOfRange as exc:
        raise bad_request("A number is beyond the range this service stores (±1.8e308)",
                          [Issue(p, "number beyond ±1.7976931348623157e308") for p in exc.pointers]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
