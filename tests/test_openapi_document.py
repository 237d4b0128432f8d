"""The served document is generated, and builds skip Connexion's own re-validation of it (see
api/build.py), so here every document we can generate is checked against the vendored OpenAPI 3.0 schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from starlette.testclient import TestClient

from generator.api.examples import example, resource_examples
from generator.api.openapi import build_document
from generator.payload import parse_payload
from generator.payload.parse import resource_from_table_schema
from generator.payload.schema import issues, openapi_validator
from generator.payload.specs import FIELD_TYPES, FieldSpec

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


# -- examples: Swagger UI's "Try it out" sends them unedited ---------------------------------------------

EXAMPLE_PAYLOADS = ["all_types.json", "default.json"]


def schema_properties(schema: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property schema inside `schema`, nested ones and array items' included, with where it is."""
    for name, prop in (schema.get("properties") or {}).items():
        yield f"{where}/{name}", prop
        yield from schema_properties(prop, f"{where}/{name}")
    if isinstance(schema.get("items"), dict):
        yield from schema_properties(schema["items"], f"{where}/items")


def parameter_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, parameter in document["components"]["parameters"].items():
        yield f"#/components/parameters/{name}", parameter["schema"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if "$ref" not in parameter:
                    yield f"{method.upper()} {path} {parameter['in']} {parameter['name']}", parameter["schema"]


def example_issues(document: dict[str, Any]) -> list[str]:
    """Each schema property or parameter without an example, or whose example its own schema refuses."""
    found: list[str] = []
    candidates = [*parameter_schemas(document)]
    for name, schema in document["components"]["schemas"].items():
        candidates += schema_properties(schema, f"#/components/schemas/{name}")
    for where, schema in candidates:
        if "example" not in schema:
            found.append(f"{where}: no example")
            continue
        # The document's components ride along so `$ref`s inside the schema resolve.
        validator = Draft4Validator({**schema, "components": document["components"]},
                                    format_checker=Draft4Validator.FORMAT_CHECKER)
        found += [f"{where}: {error.message}" for error in validator.iter_errors(schema["example"])]
    return found


@pytest.mark.parametrize("name", EXAMPLE_PAYLOADS)
def test_every_property_and_parameter_has_an_example_its_schema_accepts(
    name: str, load_payload: Callable[[str], dict[str, Any]]
) -> None:
    assert example_issues(document_for(load_payload(name))) == []


def test_examples_meet_every_constraint_and_key_kind() -> None:
    document = document_for(every_type_payload())
    assert example_issues(document) == []
    schemas = document["components"]["schemas"]
    assert schemas["serial_input"]["properties"]["level"]["example"] == 1  # enum: its first member
    code = schemas["serial_input"]["properties"]["code"]["example"]
    assert re.fullmatch("[A-Z]{2,8}", code), code
    parameter = document["paths"]["/pair/{id}"]["get"]["parameters"][0]
    pair = schemas["pair_input"]["properties"]
    assert parameter["schema"]["example"] == f"{pair['a']['example']},{pair['b']['example']}"
    keyed = document["paths"]["/keyed/{id}"]["put"]["parameters"][0]["schema"]["example"]
    assert keyed == schemas["keyed_input"]["properties"]["key"]["example"]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ({"type": "integer", "constraints": {"minimum": 10, "maximum": 20}}, 10),
        ({"type": "integer", "constraints": {"maximum": -3}}, -3),
        ({"type": "integer", "constraints": {"minimum": 2**60}}, 2**60),  # no JS-safe value is allowed
        ({"type": "number", "constraints": {"minimum": 2.25}}, 2.25),
        ({"type": "year", "constraints": {"maximum": 1999}}, 1999),
        ({"type": "date", "constraints": {"maximum": "2001-02-03"}}, "2001-02-03"),
        ({"type": "date", "constraints": {"minimum": "2000-01-01"}}, "2024-05-17"),
        ({"type": "time", "constraints": {"minimum": "23:00:00"}}, "23:00:00"),
        ({"type": "datetime", "constraints": {"minimum": "2030-01-01T00:00:00"}}, "2030-01-01T00:00:00"),
        ({"type": "string", "constraints": {"minLength": 10}}, "examplexxx"),
        ({"type": "string", "constraints": {"maxLength": 3}}, "exa"),
        ({"type": "string", "constraints": {"enum": ["b", "a"]}}, "b"),
        ({"type": "string", "format": "email"}, "user@example.com"),
        ({"type": "geopoint", "format": "array"}, [13.4, 52.52]),
        ({"type": "geopoint", "format": "object"}, {"lon": 13.4, "lat": 52.52}),
        ({"type": "geojson"}, {"type": "Point", "coordinates": [13.4, 52.52]}),
    ],
)
def test_examples_stay_within_the_constraints(field: dict[str, Any], expected: Any) -> None:
    assert example(field_spec(field)) == expected


@pytest.mark.parametrize(
    ("pattern", "constraints"),
    [
        ("[a-z]{3}-[0-9]{2}", {}),
        ("(foo|bar)+", {"maxLength": 6}),
        (r"\w+@\w+\.(com|org)", {"maxLength": 12}),
        ("^[A-Z]+$", {"minLength": 5, "maxLength": 6}),
        (r"\d{4}", {}),
        (".+", {}),
    ],
)
def test_pattern_examples_match_the_whole_value(pattern: str, constraints: dict[str, Any]) -> None:
    value = example(field_spec({"type": "string", "constraints": {"pattern": pattern, **constraints}}), key_parts=2)
    assert isinstance(value, str) and re.fullmatch(pattern, value), value
    assert constraints.get("minLength", 0) <= len(value) <= constraints.get("maxLength", len(value))
    assert "/" not in value and "," not in value  # a part of a composite key must fit in a URL


def test_a_pattern_no_value_can_meet_gets_no_example() -> None:
    assert example(field_spec({"type": "string", "constraints": {"pattern": "[A-Z]{5}", "maxLength": 2}})) is None


def test_a_foreign_key_takes_the_example_of_the_key_it_references() -> None:
    parent = {"fields": [{"name": "code", "type": "string", "constraints": {"pattern": "[A-Z]{3}"}}],
              "primaryKey": "code"}
    child = {"fields": [{"name": "id", "type": "integer"}, {"name": "parent", "type": "string"}],
             "primaryKey": "id", "foreignKeys": [{"fields": "parent", "reference": {"resource": "parent",
                                                                                    "fields": "code"}}]}
    payload = {"data_resource_schema": {"data": {"dataDictionary": [
        {"name": "child", "tableSchema": child}, {"name": "parent", "tableSchema": parent}]}, "api": {"apiSpec": {}}}}
    examples = resource_examples(parse_payload(payload))
    assert examples["child"]["parent"] == examples["parent"]["code"]
    assert re.fullmatch("[A-Z]{3}", examples["parent"]["code"])


def field_spec(raw: dict[str, Any]) -> FieldSpec:
    table = {"fields": [{"name": "id", "type": "integer"}, {"name": "f", **raw}], "primaryKey": "id"}
    return resource_from_table_schema("t", table).field("f")


# -- response schemas: what generated clients (openapi-typescript) type --------------------------------


def test_response_rows_require_key_and_not_null_fields_and_requests_stay_closed() -> None:
    schemas = document_for(every_type_payload())["components"]["schemas"]
    assert schemas["serial"]["required"] == ["id", "code"]
    assert schemas["pair"]["required"] == ["a", "b", "code"]
    assert "required" not in schemas["serial_patch"] and "required" not in schemas["serial_filter"]
    assert schemas["serial_list"]["required"] == ["serial", "links"]
    assert schemas["serial_filter"]["additionalProperties"] is False
    for name in ("serial", "serial_input", "serial_replace", "serial_patch"):  # the filter has no JSON-like fields
        assert schemas[name]["additionalProperties"] is False, name
        assert schemas[name]["properties"]["f_object"]["additionalProperties"] is True, name
        assert schemas[name]["properties"]["f_geojson"]["additionalProperties"] is True, name


@pytest.mark.parametrize("name", EXAMPLE_PAYLOADS)
def test_every_served_row_schema_declares_required(name: str, load_payload: Callable[[str], dict[str, Any]]) -> None:
    generation = parse_payload(load_payload(name))
    schemas = build_document(generation, default_limit=100, max_limit=1000)["components"]["schemas"]
    for resource in generation.resources:
        if resource.name in schemas:
            assert set(resource.primary_key) <= set(schemas[resource.name]["required"]), resource.name


# -- the examples over HTTP, on both databases ------------------------------------------------------------


def example_body(document: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """The body Swagger UI builds for a schema: every property's example."""
    properties = document["components"]["schemas"][schema_name]["properties"]
    return {name: prop["example"] for name, prop in properties.items() if "example" in prop}


def example_query(operation: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: json.dumps(p["schema"]["example"]).strip('"') for p in operation.get("parameters", [])
            if "schema" in p and "example" in p["schema"] and p["in"] == "query"}  # fmt: skip


def served_resources(document: dict[str, Any]) -> list[str]:
    return sorted({path.split("/")[1] for path in document["paths"]})


def example_calls(document: dict[str, Any], t: str) -> list[tuple[str, str, str | None, set[int]]]:
    """The whitelisted calls on resource `t` in the order a user tries them: (method, path, body schema, statuses)."""
    item = document["paths"].get(f"/{t}/{{id}}", {})
    key = next(iter(item.values()))["parameters"][0]["schema"]["example"] if item else None
    wanted = [("post", f"/{t}", f"{t}_input", {201}), ("put", f"/{t}/{{id}}", f"{t}_replace", {200, 201}),
              ("patch", f"/{t}/{{id}}", f"{t}_patch", {200}), ("get", f"/{t}/{{id}}", None, {200}),
              ("post", f"/{t}/query", f"{t}_filter", {200}), ("delete", f"/{t}/{{id}}", None, {204})]
    return [(method, path.replace("{id}", str(key)), schema, statuses) for method, path, schema, statuses in wanted
            if method in document["paths"].get(path, {})]  # fmt: skip


@pytest.mark.parametrize("name", [*EXAMPLE_PAYLOADS, "every type"])
def test_example_requests_succeed(client: TestClient, load_payload: Callable[[str], dict[str, Any]],
                                  name: str) -> None:
    """POST each resource's example body, then PUT, PATCH, GET and query it at the example key, as Swagger UI
    would send them; then DELETE it. "every type" adds composite and uuid keys and every constraint."""
    payload = every_type_payload() if name == "every type" else load_payload(name)
    response = client.post("/generator", json=payload)
    assert response.status_code == 201, response.text
    document = client.get("/openapi.json").json()
    for t in served_resources(document):
        for method, url, schema_name, expected in example_calls(document, t):
            body = example_body(document, schema_name) if schema_name else None
            response = client.request(method.upper(), url, json=body)
            assert response.status_code in expected, f"{method.upper()} {url} {body}: {response.text}"
            if url == f"/{t}/query":
                assert len(response.json()[t]) == 1, response.text  # the example filter finds the example row
        if "get" in document["paths"].get(f"/{t}/query", {}):
            response = client.get(f"/{t}/query", params=example_query(document["paths"][f"/{t}/query"]["get"]))
            assert response.status_code == 200, response.text


# -- GET /swagger: the reference's helper document ---------------------------------------------------------


def test_swagger_helper_offers_every_reference_route_query_included(client: TestClient, corpus: Path) -> None:
    folder = corpus / "admin_tableschema_put_bodies"
    for name, file in (("1", "tableschema_1_peoples.json"), ("2", "tableschema_2_teams.json")):
        assert client.put(f"/tableschema/{name}", json=json.loads((folder / file).read_text())).status_code == 201
    document = client.get("/swagger").json()
    assert list(issues(openapi_validator(), document)) == []
    assert example_issues(document) == []
    for t in ("peoples", "teams"):
        assert set(document["paths"][f"/{t}"]) == {"get", "post"}
        assert set(document["paths"][f"/{t}/query"]) == {"post"}
        assert set(document["paths"][f"/{t}/{{id}}"]) == {"get", "put", "patch", "delete"}
