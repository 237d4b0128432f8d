"""The reference's table-schema helper routes: /tableschema CRUD, and GET /swagger whose document is an apiSpec."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from generator.payload.schema import openapi_validator

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def bodies(corpus: Path) -> dict[str, dict[str, Any]]:
    """The two bodies the reference PUTs, by the name they are stored under."""
    folder = corpus / "admin_tableschema_put_bodies"
    return {
        "1": json.loads((folder / "tableschema_1_peoples.json").read_text()),
        "2": json.loads((folder / "tableschema_2_teams.json").read_text()),
    }


@pytest.fixture
def stored(client: TestClient, bodies: dict[str, dict[str, Any]]) -> TestClient:
    for name, body in bodies.items():
        response = client.put(f"/tableschema/{name}", json=body)
        assert response.status_code == 201, response.text
    return client


def test_put_stores_then_replaces(client: TestClient, bodies: dict[str, dict[str, Any]]) -> None:
    first = client.put("/tableschema/1", json=bodies["1"])
    assert first.status_code == 201, first.text
    again = client.put("/tableschema/1", json=bodies["1"])
    assert again.status_code == 200, again.text
    replaced = client.put("/tableschema/1", json=bodies["2"])
    assert replaced.status_code == 200, replaced.text
    assert client.get("/tableschema/1").json() == bodies["2"]


def test_get_lists_every_stored_schema(stored: TestClient, bodies: dict[str, dict[str, Any]]) -> None:
    response = stored.get("/tableschema")
    assert response.status_code == 200
    assert response.json() == {"tableschemas": bodies}


def test_get_one_returns_the_body(stored: TestClient, bodies: dict[str, dict[str, Any]]) -> None:
    for name, body in bodies.items():
        response = stored.get(f"/tableschema/{name}")
        assert response.status_code == 200, response.text
        assert response.json() == body


def test_delete_then_404(stored: TestClient, bodies: dict[str, dict[str, Any]]) -> None:
    deleted = stored.delete("/tableschema/1")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    for method in ("GET", "DELETE"):
        missing = stored.request(method, "/tableschema/1")
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"].startswith(PROBLEM_JSON)
    assert stored.get("/tableschema").json() == {"tableschemas": {"2": bodies["2"]}}


def test_stored_schemas_survive_a_restart(
    make_client: Callable[..., TestClient], bodies: dict[str, dict[str, Any]]
) -> None:
    first = make_client()
    assert first.put("/tableschema/1", json=bodies["1"]).status_code == 201
    assert make_client().get("/tableschema/1").json() == bodies["1"]


def test_empty_list_and_swagger_before_anything_is_stored(client: TestClient) -> None:
    assert client.get("/tableschema").json() == {"tableschemas": {}}
    document = client.get("/swagger").json()
    assert document["paths"] == {}


@pytest.mark.parametrize(
    ("body", "pointer_part"),
    [
        ({}, "tableschema"),  # the wrapper is required
        ({"tableschema": {}}, "datastore"),
        ({"tableschema": {"datastore": {"tablename": "x"}}}, "schema"),
        ({"tableschema": {"datastore": {"tablename": "bad name", "schema": {"fields": [{"name": "id"}]}}}},
         "tablename"),
        ({"tableschema": {"datastore": {"tablename": "x", "schema": {"fields": [{"name": "id"}]}}}},
         "primaryKey"),  # no primary key
        ({"tableschema": {"datastore": {"tablename": "x", "schema": {"fields": [{"name": "id"}], "primaryKey": "no"}}}},
         "primaryKey"),  # a key naming no field
    ],
)
def test_invalid_body_is_400_and_not_stored(client: TestClient, body: dict[str, Any], pointer_part: str) -> None:
    response = client.put("/tableschema/1", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert pointer_part in response.text
    assert client.get("/tableschema/1").status_code == 404


# -- GET /swagger ---------------------------------------------------------------------------------------


def test_swagger_documents_both_tables(stored: TestClient) -> None:
    response = stored.get("/swagger")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert [error.message for error in openapi_validator().iter_errors(document)] == []
    for name in ("peoples", "teams"):
        assert set(document["paths"][f"/{name}"]) >= {"get", "post"}
        assert set(document["paths"][f"/{name}/{{id}}"]) >= {"get", "put", "patch", "delete"}


def test_swagger_leaves_out_disabled_methods(client: TestClient, bodies: dict[str, dict[str, Any]]) -> None:
    body = bodies["1"]
    body["tableschema"]["api"]["methods"][0]["delete"]["enabled"] = False
    body["tableschema"]["api"]["methods"][0]["post"]["enabled"] = False
    assert client.put("/tableschema/1", json=body).status_code == 201
    paths = client.get("/swagger").json()["paths"]
    assert "delete" not in paths["/peoples/{id}"]
    assert "post" not in paths["/peoples"]
    assert "get" in paths["/peoples"]


def payload_from(client: TestClient, document: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A generation payload built from the stored table schemas, with `document` as its apiSpec."""
    stored = client.get("/tableschema").json()["tableschemas"]
    datastores = [body["tableschema"]["datastore"] for body in stored.values()]
    dictionary = [{"name": store["tablename"], "tableSchema": store["schema"]} for store in datastores]
    resource = {"name": "from the helper", "data": {"dataDictionary": dictionary}, "api": {"apiSpec": document}}
    return {"data_resource_schema": resource, **top}


def _required_in_constraints(body: dict[str, Any]) -> dict[str, Any]:
    for field in body["tableschema"]["datastore"]["schema"]["fields"]:
        field["constraints"] = {"required": field.pop("required")}
    return body


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda body: body,  # the reference's bodies as they are (field-level "required": false)
        _required_in_constraints,  # the same, written the Table Schema v1 way
    ],
    ids=["reference-bodies", "constraints-required"],
)
def test_swagger_document_works_as_an_api_spec(
    client: TestClient, bodies: dict[str, dict[str, Any]], rewrite: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    for name, body in bodies.items():
        assert client.put(f"/tableschema/{name}", json=rewrite(body)).status_code == 201
    document = client.get("/swagger").json()
    body = payload_from(client, document)
    assert "ignore_validation" not in body
    response = client.post("/generator", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []
    served = client.get("/openapi.json").json()["paths"]
    assert {path: set(item) for path, item in served.items()} == {
        path: set(item) for path, item in document["paths"].items()}  # fmt: skip

    created = client.post("/peoples", json={"name": "Ann"})
    assert created.status_code == 201, created.text
    assert client.get(created.headers["location"]).json() == {"id": 1, "name": "Ann"}
    assert client.put("/teams/5", json={"name": "Red"}).status_code == 201
    assert client.patch("/teams/5", json={"name": "Blue"}).json() == {"id": 5, "name": "Blue"}
    assert client.get("/teams").json()["teams"] == [{"id": 5, "name": "Blue"}]
    assert client.delete("/peoples/1").status_code == 204
    assert client.get("/peoples/1").status_code == 404
