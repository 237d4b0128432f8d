"""Errors: every 4xx is an RFC 7807 problem, and nothing a client sends causes a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

Payload = Callable[[str], dict[str, Any]]
PROBLEM_JSON = "application/problem+json"
JSON = {"content-type": "application/json"}


@pytest.fixture
def served(client: TestClient, load_payload: Payload) -> TestClient:
    """default.json applied, with one person and one team."""
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    assert client.post("/people", json={"name": "Ann"}).status_code == 201
    assert client.put("/team/1", json={"name": "Red"}).status_code == 201
    return client


def assert_problem(response: Any, status: int | None = None) -> dict[str, Any]:
    """An RFC 7807 problem: problem+json with type, title, status (equal to the HTTP status) and detail."""
    if status is not None:
        assert response.status_code == status, response.text
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == response.status_code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/nowhere", {}, 404),  # unknown route
        ("GET", "/people/2", {}, 404),  # absent row
        ("DELETE", "/people/2", {}, 404),
        ("POST", "/team", {"json": {"name": "x"}}, 405),  # route exists, method not whitelisted
        ("GET", "/people?limit=0", {}, 400),
        ("POST", "/people", {"json": {"nope": 1}}, 400),
        ("POST", "/people", {"json": {"id": 1, "name": "Ann again"}}, 409),  # duplicate primary key
        ("POST", "/generator", {"json": {}}, 400),
        ("GET", "/tableschema/nope", {}, 404),
        ("DELETE", "/tableschema/nope", {}, 404),
        ("PUT", "/tableschema/x", {"json": {}}, 400),
        ("POST", "/health", {}, 405),
    ],
)
def test_every_4xx_is_a_problem(
    served: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    assert_problem(served.request(method, path, **kwargs), status)


def test_bad_json_body_is_400(served: TestClient) -> None:
    for path in ("/people", "/people/query", "/generator"):
        body = assert_problem(served.post(path, content=b'{"name": ', headers=JSON), 400)
        assert "JSON" in body["detail"]
    assert_problem(served.put("/people/1", content=b"{'name': 'single quotes'}", headers=JSON), 400)
    assert_problem(served.patch("/people/1", content=b'{"name": "x",}', headers=JSON), 400)
    assert served.get("/people/1").json() == {"id": 1, "name": "Ann"}


@pytest.mark.parametrize("body", [b"[]", b'["name"]', b'"Ann"', b"42", b"true", b"null"])
def test_body_that_is_not_an_object_is_400(served: TestClient, body: bytes) -> None:
    for method, path in (("POST", "/people"), ("PUT", "/people/1"), ("PATCH", "/people/1"),
                         ("POST", "/people/query"), ("POST", "/generator")):  # fmt: skip
        assert_problem(served.request(method, path, content=body, headers=JSON), 400)
    assert served.get("/people/1").json() == {"id": 1, "name": "Ann"}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x"],
)
def test_wrong_content_type_is_415(served: TestClient, content_type: str) -> None:
    """415 Unsupported Media Type is the status for a body in a type the route does not take (RFC 9110)."""
    headers = {"content-type": content_type}
    for method, path in (("POST", "/people"), ("PUT", "/people/1"), ("PATCH", "/people/1"), ("POST", "/generator")):
        response = served.request(method, path, content=b'{"name": "Bob"}', headers=headers)
        assert_problem(response, 415)
    assert [row["name"] for row in served.get("/people").json()["people"]] == ["Ann"]


def test_empty_body_is_400(served: TestClient) -> None:
    for method, path in (("POST", "/people"), ("PUT", "/people/1"), ("PATCH", "/people/1"), ("POST", "/generator")):
        assert_problem(served.request(method, path, content=b"", headers=JSON), 400)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/people", None, 200),
        ("POST", "/people", {"name": "Bob"}, 201),
        ("POST", "/generator", {"data_resource_schema": {"data": {"dataDictionary": []}}}, 201),
        ("GET", "/generator", None, 200),
        ("GET", "/health", None, 200),
        ("PUT", "/tableschema/1", {"tableschema": {"datastore": {
            "tablename": "x", "schema": {"fields": [{"name": "id", "type": "integer"}], "primaryKey": "id"}}}}, 201),
        ("GET", "/tableschema", None, 200),
        ("GET", "/swagger", None, 200),
    ],
)
def test_success_responses_are_json(
    served: TestClient, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    """Successes are application/json: problem+json is for problems only."""
    response = served.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"


# -- hostile inputs -------------------------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"name": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}"


def _generation(fields: list[dict[str, Any]], primary_key: Any = "id", **schema: Any) -> dict[str, Any]:
    entry = {"name": "h", "tableSchema": {"fields": fields, "primaryKey": primary_key, **schema}}
    paths = {"/h": {"get": {}, "post": {}}, "/h/{id}": {"get": {}}, "/h/query": {"get": {}, "post": {}}}
    api = {"apiSpec": {"paths": paths}}
    return {"json": {"data_resource_schema": {"data": {"dataDictionary": [entry]}, "api": api}}}


def _tableschema(schema: Any) -> dict[str, Any]:
    return {"json": {"tableschema": {"datastore": {"tablename": "h", "schema": schema}}}}


ID = {"name": "id", "type": "integer"}
SELF_KEY = [{"fields": "parent", "reference": {"fields": "id"}}]
HOSTILE: list[tuple[str, str, str, dict[str, Any]]] = [
    # -- keys and query parameters
    ("huge-id", "GET", "/people/99999999999999999999", {}),
    ("huge-negative-id", "GET", "/people/-99999999999999999999", {}),
    ("huge-id-put", "PUT", "/people/99999999999999999999", {"json": {"name": "x"}}),
    ("float-id", "GET", "/people/1.5", {}),
    ("exponent-id", "GET", "/people/1e3", {}),
    ("nul-id", "GET", "/people/%00", {}),
    ("long-id", "GET", "/people/" + "9" * 5000, {}),
    ("limit-exponent", "GET", "/people?limit=1e3", {}),
    ("limit-empty", "GET", "/people?limit=", {}),
    ("limit-repeated", "GET", "/people?limit=1&limit=2", {}),
    ("offset-huge", "GET", "/people?offset=" + "9" * 40, {}),
    ("offset-max", "GET", "/people?offset=9223372036854775807&limit=1000", {}),
    ("offset-max-query", "POST", "/people/query?offset=9223372036854775807&limit=1000", {"json": {}}),
    ("query-nul", "GET", "/people/query?name=%00", {}),
    ("query-huge-id", "GET", "/people/query?id=99999999999999999999", {}),
    ("query-text-id", "GET", "/people/query?id=abc", {}),
    ("query-repeated", "GET", "/people/query?name=a&name=b", {}),
    ("query-body-nul", "POST", "/people/query", {"json": {"name": "\u0000"}}),
    ("query-body-huge-id", "POST", "/people/query", {"json": {"id": 99999999999999999999}}),
    ("query-body-operator", "POST", "/people/query", {"json": {"name": {"$ne": None}}}),
    ("query-body-list", "POST", "/people/query", {"json": {"name": ["Ann"]}}),
    ("dot-dot", "GET", "/%2e%2e/%2e%2e/etc/passwd", {}),
    ("trailing-slash", "GET", "/people/", {}),
    ("double-slash", "GET", "//people", {}),
    ("head", "HEAD", "/people", {}),
    ("options", "OPTIONS", "/people/1", {}),
    ("unknown-method", "PROPFIND", "/people", {}),
    ("query-emoji", "GET", "/people/query?name=%F0%9F%8E%89", {}),
    ("query-bad-percent", "GET", "/people/query?name=%ZZ%", {}),
    # -- bodies
    ("body-nul", "POST", "/people", {"json": {"name": "\u0000"}}),
    ("body-lone-surrogate", "POST", "/people", {"content": b'{"name": "\\ud800"}', "headers": JSON}),
    ("body-bad-utf8", "POST", "/people", {"content": b'{"name": "\xff\xfe"}', "headers": JSON}),
    ("body-utf16", "POST", "/people", {"content": '{"name": "x"}'.encode("utf-16"), "headers": JSON}),
    ("body-deeply-nested-array", "POST", "/people", {"content": DEEP, "headers": JSON}),
    ("body-deeply-nested-object", "POST", "/people", {"content": DEEP_OBJECT, "headers": JSON}),
    ("body-huge-exponent", "POST", "/people", {"content": b'{"id": 1e999999999}', "headers": JSON}),
    ("body-huge-integer", "POST", "/people", {"content": b'{"id": ' + b"9" * 5000 + b"}", "headers": JSON}),
    ("body-nan", "POST", "/people", {"content": b'{"name": NaN}', "headers": JSON}),
    ("body-id-string", "PUT", "/people/1", {"json": {"id": "1", "name": "x"}}),
    ("body-patch-list", "PATCH", "/people/1", {"json": []}),
    ("no-content-type", "POST", "/people", {"content": b'{"name": "x"}'}),
    ("content-type-charset", "POST", "/people", {"content": b'{"name": "x"}',
                                                  "headers": {"content-type": "application/json; charset=latin-1"}}),
    # -- generation payloads
    ("gen-not-json", "POST", "/generator", {"content": b"nope", "headers": JSON}),
    ("gen-data-list", "POST", "/generator", {"json": {"data_resource_schema": []}}),
    ("gen-no-dictionary", "POST", "/generator", {"json": {"data_resource_schema": {"data": {}}}}),
    ("gen-paths-list", "POST", "/generator", {"json": {"data_resource_schema": {
        "data": {"dataDictionary": []}, "api": {"apiSpec": {"paths": ["/x"]}}}}}),
    ("gen-path-item-string", "POST", "/generator", {"json": {"data_resource_schema": {
        "data": {"dataDictionary": []}, "api": {"apiSpec": {"paths": {"/x": "nope"}}}}}}),
    ("gen-api-string", "POST", "/generator", {"json": {"data_resource_schema": {
        "data": {"dataDictionary": []}, "api": "nope"}}}),
    ("gen-quoted-field-name", "POST", "/generator", _generation([ID, {"name": 'a"; DROP TABLE people; --'}])),
    ("gen-long-names", "POST", "/generator", _generation(
        [ID, {"name": "x" * 62 + "a", "constraints": {"unique": True}},
         {"name": "x" * 62 + "b", "constraints": {"unique": True}}])),
    ("gen-bad-regex", "POST", "/generator", _generation([ID, {"name": "s", "constraints": {"pattern": "["}}])),
    ("gen-bad-date-minimum", "POST", "/generator", _generation(
        [ID, {"name": "d", "type": "date", "constraints": {"minimum": "not a date"}}])),
    ("gen-bad-datetime-maximum", "POST", "/generator", _generation(
        [ID, {"name": "d", "type": "datetime", "constraints": {"maximum": "2020-13-01T00:00:00Z"}}])),
    ("gen-string-minimum-on-integer", "POST", "/generator", _generation(
        [ID, {"name": "n", "type": "integer", "constraints": {"minimum": "abc"}}])),
    ("gen-enum-wrong-type", "POST", "/generator", _generation(
        [ID, {"name": "n", "type": "integer", "constraints": {"enum": ["a", None, {"x": 1}]}}])),
    ("gen-self-foreign-key", "POST", "/generator", _generation(
        [ID, {"name": "parent", "type": "integer"}], foreignKeys=SELF_KEY)),
    ("gen-foreign-key-type-mismatch", "POST", "/generator", _generation(
        [ID, {"name": "parent", "type": "string"}], foreignKeys=SELF_KEY)),
    ("gen-json-key", "POST", "/generator", _generation([{"name": "id", "type": "object"}])),
    ("gen-self-many-to-many", "POST", "/generator", {"json": {"data_resource_schema": {"data": {
        "dataDictionary": [{"name": "h", "tableSchema": {"fields": [ID], "primaryKey": "id"}}],
        "relationships": {"manyToMany": [["h", "H"]]}}}}}),
    ("gen-field-named-limit", "POST", "/generator", _generation([ID, {"name": "limit"}, {"name": "offset"}])),
    # -- table-schema helper routes
    ("ts-empty", "PUT", "/tableschema/1", {"json": {}}),
    ("ts-no-key", "PUT", "/tableschema/1", _tableschema({"fields": [ID]})),
    ("ts-field-name-number", "PUT", "/tableschema/1", _tableschema({"fields": [{"name": 5}], "primaryKey": "5"})),
    ("ts-field-is-string", "PUT", "/tableschema/1", _tableschema({"fields": ["id"], "primaryKey": "id"})),
    ("ts-key-number", "PUT", "/tableschema/1", _tableschema({"fields": [ID], "primaryKey": 5})),
    ("ts-foreign-keys-string", "PUT", "/tableschema/1", _tableschema(
        {"fields": [ID], "primaryKey": "id", "foreignKeys": "x"})),
    ("ts-constraints-string", "PUT", "/tableschema/1", _tableschema(
        {"fields": [{"name": "id", "type": "integer", "constraints": "x"}], "primaryKey": "id"})),
    ("ts-unknown-type", "PUT", "/tableschema/1", _tableschema(
        {"fields": [{"name": "id", "type": "nope"}], "primaryKey": "id"})),
    ("ts-long-name", "PUT", "/tableschema/" + "n" * 300, _tableschema({"fields": [ID], "primaryKey": "id"})),
    ("ts-nul-name", "PUT", "/tableschema/%00", _tableschema({"fields": [ID], "primaryKey": "id"})),
    ("ts-get-nul-name", "GET", "/tableschema/%00", {}),
    ("ts-delete-nul-name", "DELETE", "/tableschema/%00", {}),
    ("generator-unknown-query", "GET", "/generator?debug=1", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_never_a_server_error(
    served: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = served.request(method, path, **kwargs)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response)
    # the service still works afterwards (a generation that was accepted serves its own routes instead)
    assert served.get("/health").status_code == 200
    if response.status_code >= 400 or path.split("/")[1] != "generator":
        assert served.get("/people/1").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 100_000},  # long text is text
        {"name": "emoji 🎉 and ünïcode"},
        {"name": "'; DROP TABLE people; --"},
        {"name": "<script>alert(1)</script>"},
    ],
)
def test_unusual_text_is_stored_as_given(served: TestClient, body: dict[str, str]) -> None:
    created = served.post("/people", json=body)
    assert created.status_code == 201, created.text
    assert served.get(created.headers["location"]).json()["name"] == body["name"]
    assert served.get("/people/1").json() == {"id": 1, "name": "Ann"}
