"""jsonschema validation against the vendored documents in `schemas/`.

Every `$ref` resolves through a local registry, so validation never touches the network (the reference
fetched remote `$ref`s and failed offline)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from generator.errors import Issue
from generator.pointers import pointer

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
PAYLOAD_SCHEMA = "generation-payload.schema.json"
OPENAPI_SCHEMA = "openapi-3.0.schema.json"
TABLE_SCHEMA = "table-schema.schema.json"


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / name).read_text())


@cache
def _registry() -> Registry:
    resources = [(path.name, Resource.from_contents(_load(path.name))) for path in SCHEMAS_DIR.glob("*.json")]
    return Registry().with_resources(resources)


@cache
def payload_validator() -> Draft202012Validator:
    schema = _load(PAYLOAD_SCHEMA)
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def table_schema_validator() -> Draft202012Validator:
    return Draft202012Validator(_load(TABLE_SCHEMA), registry=_registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def openapi_validator() -> Draft4Validator:
    return Draft4Validator(_load(OPENAPI_SCHEMA))


def issues(validator: Draft4Validator | Draft202012Validator, instance: Any, prefix: str = "") -> Iterator[Issue]:
    """Every error, deepest cause first for `oneOf`/`anyOf` so the message names the real problem."""
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        best = _deepest(error)
        yield Issue(prefix + pointer(best.absolute_path), best.message)


def _deepest(error: ValidationError) -> ValidationError:
    if not error.context:
        return error
    return max((_deepest(e) for e in error.context), key=lambda e: len(e.absolute_path))
