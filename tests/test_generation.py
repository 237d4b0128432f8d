"""The generation lifecycle over HTTP: apply, re-apply, regenerate, refuse conflicts, restart."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from starlette.testclient import TestClient

from generator.errors import StartupError

Payload = Callable[[str], dict[str, Any]]
MakeClient = Callable[..., TestClient]
PROBLEM_JSON = "application/problem+json"
CRUD = ("get", "post", "put", "patch", "delete")


# -- payload helpers ------------------------------------------------------------------------------------


def field(name: str, type_: str = "string", **constraints: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "constraints": constraints}


def table(name: str, *fields: dict[str, Any], primary_key: str | list[str] | None = "id") -> dict[str, Any]:
    schema: dict[str, Any] = {"fields": list(fields) or [field("id", "integer"), field("name")]}
    if primary_key is not None:
        schema["primaryKey"] = primary_key
    return {"name": name, "tableSchema": schema}


def crud_paths(*names: str) -> dict[str, Any]:
    """Every resource operation of each table, as bare `{}` whitelist markers."""
    paths: dict[str, Any] = {}
    for name in names:
        paths[f"/{name}"] = {"get": {}, "post": {}}
        paths[f"/{name}/{{id}}"] = {"get": {}, "put": {}, "patch": {}, "delete": {}}
        paths[f"/{name}/query"] = {"get": {}, "post": {}}
    return paths


def payload(*tables: dict[str, Any], paths: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A generation payload; by default every table gets every route."""
    names = [t["name"].lower() for t in tables]
    resource = {
        "name": "test resource",
        "data": {"dataDictionary": list(tables)},
        "api": {"apiSpec": {"paths": crud_paths(*names) if paths is None else paths}},
    }
    return {"data_resource_schema": resource, **top}


@contextmanager
def engine_for(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def user_tables(database_url: str) -> set[str]:
    with engine_for(database_url) as engine:
        return {name for name in inspect(engine).get_table_names() if not name.startswith("drg_")}


def columns(database_url: str, table_name: str) -> dict[str, str]:
    with engine_for(database_url) as engine:
        return {c["name"]: str(c["type"]) for c in inspect(engine).get_columns(table_name)}


def execute(database_url: str, *statements: str) -> None:
    with engine_for(database_url) as engine, engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def generate(client: TestClient, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post("/generator", json=body)
    assert response.status_code == status, response.text
    return response.json()


# -- applying a payload ---------------------------------------------------------------------------------


def test_generation_response_describes_what_was_applied(client: TestClient) -> None:
    response = client.post("/generator", json=payload(table("alpha")))
    assert response.status_code == 201, response.text
    body = response.json()
    assert {"message", "digest", "tables", "routes", "warnings", "created_tables", "seconds"} <= set(body)
    assert body["message"]
    assert body["tables"] == ["alpha"]
    assert body["created_tables"] == ["alpha"]
    assert set(body["routes"]) == {
        "GET /alpha", "POST /alpha", "GET /alpha/{id}", "PUT /alpha/{id}", "PATCH /alpha/{id}",
        "DELETE /alpha/{id}", "GET /alpha/query", "POST /alpha/query",
    }  # fmt: skip
    assert body["warnings"] == []
    assert len(body["digest"]) == 64
    assert isinstance(body["seconds"], int | float) and body["seconds"] >= 0


def test_routes_are_served_at_once_without_a_restart(client: TestClient) -> None:
    assert client.get("/alpha").status_code == 404
    generate(client, payload(table("alpha")))
    created = client.post("/alpha", json={"name": "Ann"})
    assert created.status_code == 201, created.text
    assert client.get("/alpha").json()["alpha"] == [{"id": 1, "name": "Ann"}]


def test_same_payload_again_is_200_and_changes_nothing(client: TestClient, tmp_path: Path) -> None:
    first = generate(client, payload(table("alpha")))
    client.post("/alpha", json={"name": "Ann"})
    saved = (tmp_path / "payload.json").read_bytes()
    again = client.post("/generator", json=payload(table("alpha")))
    assert again.status_code == 200, again.text
    assert "already applied" in again.json()["message"]
    assert again.json()["digest"] == first["digest"]
    assert again.json()["created_tables"] == []
    assert (tmp_path / "payload.json").read_bytes() == saved
    assert client.get("/alpha").json()["alpha"] == [{"id": 1, "name": "Ann"}]


def test_same_payload_with_keys_in_another_order_is_already_applied(client: TestClient) -> None:
    body = payload(table("alpha"))
    generate(client, body)
    reordered = json.loads(json.dumps(body, sort_keys=True))  # api, data, name instead of name, data, api
    assert list(reordered["data_resource_schema"]) != list(body["data_resource_schema"])
    assert client.post("/generator", json=reordered).status_code == 200


def test_older_data_catalog_key_is_accepted(client: TestClient) -> None:
    body = payload(table("alpha"))
    body = {"data_catalog": body.pop("data_resource_schema")}
    generate(client, body)
    assert client.post("/alpha", json={"name": "Ann"}).status_code == 201


def test_get_generator_shows_the_current_generation(client: TestClient) -> None:
    before = client.get("/generator")
    assert before.status_code == 200
    assert before.json()["tables"] == [] and before.json()["routes"] == []
    applied = generate(client, payload(table("alpha")))
    current = client.get("/generator").json()
    keys = ("digest", "tables", "routes", "warnings", "protected_fields", "version", "hash", "created_at", "created_by")
    assert current == {key: applied[key] for key in keys}
    assert (current["version"], current["hash"]) == (1, applied["digest"])


def test_openapi_json_serves_the_current_document(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["paths"] == {}
    generate(client, payload(table("alpha"), paths={"/alpha": {"get": {"summary": "All the alphas"}}}))
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["paths"] == {"/alpha": {"get": document["paths"]["/alpha"]["get"]}}
    assert document["paths"]["/alpha"]["get"]["summary"] == "All the alphas"


@pytest.mark.parametrize("generated", [False, True], ids=["before-generation", "after-generation"])
def test_swagger_ui_is_served(client: TestClient, generated: bool) -> None:
    if generated:
        generate(client, payload(table("alpha")))
    response = client.get("/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert '"/openapi.json"' in response.text  # the UI shows the served document, not a demo
    assert client.get("/ui/swagger-ui-bundle.js").status_code == 200


def test_table_without_primary_key_is_rejected_naming_it(client: TestClient, database_url: str) -> None:
    body = payload(table("alpha"), table("keyless", primary_key=None), paths={})
    response = client.post("/generator", json=body)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert any("keyless" in e["message"] and e["pointer"].endswith("/dataDictionary/1/tableSchema") for e in errors)
    assert user_tables(database_url) == set()


def test_invalid_payload_is_not_saved_and_changes_nothing(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    good = generate(client, payload(table("alpha")))
    saved = (tmp_path / "payload.json").read_bytes()
    bad = payload(table("beta", field("id", "integer"), field("x", "no-such-type")))
    response = client.post("/generator", json=bad)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["pointer"].endswith("/dataDictionary/0/tableSchema/fields/1/type")
    assert user_tables(database_url) == {"alpha"}
    assert (tmp_path / "payload.json").read_bytes() == saved
    assert client.get("/generator").json()["digest"] == good["digest"]


# -- regeneration ---------------------------------------------------------------------------------------


def test_second_payload_with_new_tables_replaces_the_routes(client: TestClient, database_url: str) -> None:
    generate(client, payload(table("alpha")))
    assert client.post("/alpha", json={"name": "Ann"}).status_code == 201
    second = generate(client, payload(table("beta")))
    assert second["created_tables"] == ["beta"]
    assert client.post("/beta", json={"name": "Bob"}).status_code == 201
    assert client.get("/beta/1").json() == {"id": 1, "name": "Bob"}
    assert client.get("/alpha").status_code == 404
    assert client.get("/alpha/1").status_code == 404
    assert set(client.get("/openapi.json").json()["paths"]) == {"/beta", "/beta/{id}", "/beta/query"}
    # tables of the earlier generation are left alone
    assert user_tables(database_url) == {"alpha", "beta"}


def test_regenerating_back_to_an_earlier_payload_serves_its_rows(client: TestClient) -> None:
    generate(client, payload(table("alpha")))
    client.post("/alpha", json={"name": "Ann"})
    generate(client, payload(table("beta")))
    again = generate(client, payload(table("alpha")))
    assert again["created_tables"] == []
    assert client.get("/alpha/1").json() == {"id": 1, "name": "Ann"}


def test_changing_only_the_whitelist_keeps_tables_and_rows(client: TestClient) -> None:
    generate(client, payload(table("alpha"), paths={"/alpha": {"get": {}, "post": {}}}))
    client.post("/alpha", json={"name": "Ann"})
    assert client.delete("/alpha/1").status_code in (404, 405)
    changed = generate(client, payload(table("alpha"), paths={"/alpha": {"get": {}}, "/alpha/{id}": {"delete": {}}}))
    assert changed["created_tables"] == []
    assert set(changed["routes"]) == {"GET /alpha", "DELETE /alpha/{id}"}
    assert client.post("/alpha", json={"name": "Bob"}).status_code in (404, 405)
    assert client.get("/alpha").json()["alpha"] == [{"id": 1, "name": "Ann"}]
    assert client.delete("/alpha/1").status_code == 204


def _extra_required_field(body: dict[str, Any]) -> dict[str, Any]:
    """An optional new field is applied (tests/test_schema_evolution.py); a required one cannot be, with rows."""
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"].append(
        {"name": "age", "type": "integer", "constraints": {"required": True}}
    )
    return body


def _changed_type(body: dict[str, Any]) -> dict[str, Any]:
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"][1]["type"] = "integer"
    return body


def _now_required(body: dict[str, Any]) -> dict[str, Any]:
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"][1]["constraints"] = {
        "required": True
    }
    return body


def _dropped_field(body: dict[str, Any]) -> dict[str, Any]:
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"].pop(1)
    return body


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (_extra_required_field, "age"),  # people gains a required field its rows have no value for
        (_changed_type, "name"),  # people.name string -> integer
        (_now_required, "name"),  # people.name nullable -> NOT NULL
        (_dropped_field, "name"),  # the table has a column the payload no longer declares
    ],
)
def test_payload_changing_an_existing_table_is_409_and_changes_nothing(
    client: TestClient, load_payload: Payload, database_url: str, tmp_path: Path,
    change: Callable[[dict[str, Any]], dict[str, Any]], column: str,
) -> None:  # fmt: skip
    applied = generate(client, load_payload("default.json"))
    client.post("/people", json={"name": "Ann"})
    saved = (tmp_path / "payload.json").read_bytes()
    before = columns(database_url, "people")

    response = client.post("/generator", json=change(load_payload("default.json")))
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    differences = response.json()["differences"]
    assert any("people" in d and column in d for d in differences), differences
    # the previous API still serves, the database and the saved payload are unchanged
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann"}
    assert client.get("/generator").json()["digest"] == applied["digest"]
    assert columns(database_url, "people") == before
    assert (tmp_path / "payload.json").read_bytes() == saved


def test_generation_is_all_or_nothing(client: TestClient, database_url: str, tmp_path: Path) -> None:
    generate(client, payload(table("beta")))
    saved = (tmp_path / "payload.json").read_bytes()
    clash = payload(table("alpha"), table("beta", field("id", "integer"), field("name", "integer")))
    response = client.post("/generator", json=clash)
    assert response.status_code == 409, response.text
    assert any("beta" in d and "name" in d for d in response.json()["differences"])
    assert user_tables(database_url) == {"beta"}  # alpha, which is new, was not created
    assert client.get("/alpha").status_code == 404
    assert client.get("/beta").status_code == 200
    assert (tmp_path / "payload.json").read_bytes() == saved


def test_touch_database_false_serves_tables_that_already_match(client: TestClient, database_url: str) -> None:
    generate(client, payload(table("alpha"), table("beta")))
    client.post("/alpha", json={"name": "Ann"})
    applied = generate(client, payload(table("alpha"), touch_database=False))
    assert applied["created_tables"] == []
    assert client.get("/alpha/1").json() == {"id": 1, "name": "Ann"}
    assert client.get("/beta").status_code == 404
    assert user_tables(database_url) == {"alpha", "beta"}


def test_touch_database_false_with_missing_tables_is_409_and_creates_nothing(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    response = client.post("/generator", json=payload(table("alpha"), touch_database=False))
    assert response.status_code == 409, response.text
    assert any("alpha" in d for d in response.json()["differences"])
    assert user_tables(database_url) == set()
    assert not (tmp_path / "payload.json").exists()
    assert client.get("/alpha").status_code == 404


def test_touch_database_false_with_a_different_table_is_409(client: TestClient) -> None:
    generate(client, payload(table("alpha")))
    changed = payload(table("alpha", field("id", "integer"), field("name", "date")), touch_database=False)
    response = client.post("/generator", json=changed)
    assert response.status_code == 409, response.text
    assert any("alpha" in d and "name" in d for d in response.json()["differences"])
    assert client.get("/alpha").status_code == 200


# -- restart --------------------------------------------------------------------------------------------


def test_restart_serves_the_last_generation_and_its_rows(make_client: MakeClient, load_payload: Payload) -> None:
    first = make_client()
    applied = generate(first, load_payload("default.json"))
    first.post("/people", json={"name": "Ann"})
    first.put("/team/3", json={"name": "Red"})

    restarted = make_client()
    assert restarted.get("/generator").json()["digest"] == applied["digest"]
    assert restarted.get("/people/1").json() == {"id": 1, "name": "Ann"}
    assert restarted.get("/team").json()["team"] == [{"id": 3, "name": "Red"}]
    assert restarted.post("/people", json={"name": "Bob"}).json()["id"] == 2
    assert restarted.get("/order").status_code == 404
    # posting the same payload after the restart changes nothing
    assert restarted.post("/generator", json=load_payload("default.json")).status_code == 200


def test_restart_after_regeneration_serves_the_latest(make_client: MakeClient) -> None:
    first = make_client()
    generate(first, payload(table("alpha")))
    generate(first, payload(table("beta")))
    restarted = make_client()
    assert restarted.get("/beta").status_code == 200
    assert restarted.get("/alpha").status_code == 404


def test_restart_after_a_touch_database_false_generation(make_client: MakeClient) -> None:
    first = make_client()
    generate(first, payload(table("alpha"), table("beta")))
    first.post("/alpha", json={"name": "Ann"})
    generate(first, payload(table("alpha"), touch_database=False))
    restarted = make_client()
    assert restarted.get("/alpha/1").json() == {"id": 1, "name": "Ann"}
    assert restarted.get("/beta").status_code == 404


@contextmanager
def unraisable_errors() -> Iterator[list[str]]:
    """Collect what the garbage collector reports while finalising objects (e.g. unclosed connections)."""
    seen: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda report: seen.append(f"{report.exc_type.__name__}: {report.exc_value}")
    try:
        yield seen
        gc.collect()
    finally:
        sys.unraisablehook = previous


def failed_start(make_client: MakeClient) -> tuple[str, list[str]]:
    """Start a service that must refuse to start; return its error message and any leaked resources."""
    with unraisable_errors() as leaked:
        try:
            make_client()
        except StartupError as exc:
            message = str(exc)  # keep no reference to the traceback, so what it held can be collected
        else:
            pytest.fail("the service started on a database that does not match its payload")
    return message, leaked


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("ALTER TABLE people DROP COLUMN name", ("people", "name")),  # a column went missing
        ("ALTER TABLE people ADD COLUMN extra INTEGER", ("people", "extra")),  # an undeclared column appeared
        ("ALTER TABLE team DROP COLUMN name", ("team", "name")),
        ("DROP TABLE required", ("required",)),  # a whole table went missing
        ("DROP TABLE people_team", ("people_team",)),  # the association table too
    ],
)
def test_restart_refuses_a_database_that_no_longer_matches(
    make_client: MakeClient, load_payload: Payload, database_url: str, statement: str, named: tuple[str, ...]
) -> None:
    first = make_client()
    generate(first, load_payload("default.json"))
    execute(database_url, statement)
    message, _ = failed_start(make_client)
    for name in named:
        assert repr(name) in message, message


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # psycopg reports unclosed connections
def test_a_refused_start_leaves_no_database_connection_open(
    make_client: MakeClient, load_payload: Payload, database_url: str
) -> None:
    first = make_client()
    generate(first, load_payload("default.json"))
    execute(database_url, "DROP TABLE required")
    _, leaked = failed_start(make_client)
    assert leaked == []
