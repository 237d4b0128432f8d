"""The served document is generated, and builds skip Connexion's own re-validation of it (see
api/build.py), so here every document we can generate is checked against the vendored OpenAPI 3.0 schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from generator.api.openapi import build_document
from generator.payload import parse_payload
from generator.payload.schema import issues, openapi_validator
from generator.payload.specs import FIELD_TYPES

CORPUS_PAYLOADS = ["default.json", "all_types.json", "foreign_key_valid.json"]


def every_type_payload() -> dict[str, Any]:
    """One table per key kind, every field type, every constraint, all routes whitelisted."""
    fields = [{"name": f"f_{t}", "type": t} for t in FIELD_TYPES]
    fields += [
        {"name": "code", "type": "string", "constraints": {"required": True, "unique": True, "minLength": 2,
                                                           "maxLength": 8, "pattern": "^[A-Z]+$"}},
        {"name": "level", "type": "integer", "constraints": {"minimum": 1, "maximum": 5, "enum": [1, 2, 5]}},
        {"name": "day", "type": "date", "constraints": {"minimum": "2000-01-01"}},
    ]
    tables = {
        "serial": [{"name": "id", "type": "integer"}],
        "keyed": [{"name": "key", "type": "string", "format": "uuid"}],
        "pair": [{"name": "a", "type": "integer"}, {"name": "b", "type": "date"}],
    }
    dictionary = [
        {"name": name, "tableSchema": {"fields": keys + fields, "primaryKey": [k["name"] for k in keys]}}
        for name, keys in tables.items()
    ]
    paths: dict[str, Any] = {}
    for name in tables:
        paths |= {f"/{name}": {"get": {}, "post": {"summary": "Make one"}}, f"/{name}/query": {"get": {}, "post": {}},
                  f"/{name}/{{id}}": {"get": {}, "put": {}, "patch": {}, "delete": {"description": "Gone"}}}
    return {"data_resource_schema": {"data": {"dataDictionary": dictionary}, "api": {"apiSpec": {"paths": paths}}}}


def document_for(payload: dict[str, Any]) -> dict[str, Any]:
    return build_document(parse_payload(payload), default_limit=100, max_limit=1000)


@pytest.mark.parametrize("name", CORPUS_PAYLOADS)
def test_corpus_documents_are_valid_openapi(name: str, load_payload: Callable[[str], dict[str, Any]]) -> None:
    assert list(issues(openapi_validator(), document_for(load_payload(name)))) == []


def test_every_type_constraint_and_key_kind_gives_a_valid_document() -> None:
    document = document_for(every_type_payload())
    assert list(issues(openapi_validator(), document)) == []
    assert document["paths"]["/serial"]["post"]["summary"] == "Make one"
    assert document["paths"]["/pair/{id}"]["delete"]["description"] == "Gone"


def test_literal_query_path_is_routed_before_the_key_template() -> None:
    paths = list(document_for(every_type_payload())["paths"])
    assert paths.index("/serial/query") < paths.index("/serial/{id}")
