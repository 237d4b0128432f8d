"""The drg payload corpus: each payload does what /work/shared/corpus/README.md says, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Inspector, create_engine, inspect
from starlette.testclient import TestClient

from generator.payload.schema import openapi_validator

Payload = Callable[[str], dict[str, Any]]
PROBLEM_JSON = "application/problem+json"
PATHS = "/data_resource_schema/api/apiSpec/paths"

# default.json whitelists exactly these operations (order and required get tables but no routes)
DEFAULT_SERVED = {
    "/people": {"get", "post"},
    "/people/{id}": {"get", "put", "delete", "patch"},
    "/people/query": {"get", "post"},
    "/team": {"get"},
    "/team/{id}": {"get", "put"},
    "/people/{id}/team": {"get", "put", "patch"},  # many-to-many, both ways
    "/team/{id}/people": {"get", "put", "patch"},
}


@contextmanager
def inspector(database_url: str) -> Iterator[Inspector]:
    engine = create_engine(database_url)
    try:
        yield inspect(engine)
    finally:
        engine.dispose()


def user_tables(database_url: str) -> set[str]:
    """Tables in the database other than the platform's own drg_* tables."""
    with inspector(database_url) as found:
        return {name for name in found.get_table_names() if not name.startswith("drg_")}


def served_operations(client: TestClient) -> dict[str, set[str]]:
    document = client.get("/openapi.json").json()
    return {path: set(item) for path, item in document["paths"].items()}


# -- default.json ---------------------------------------------------------------------------------------


def test_default_creates_every_table_including_the_association_table(
    client: TestClient, load_payload: Payload, database_url: str
) -> None:
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body["tables"]) == {"people", "team", "order", "required", "people_team"}
    assert set(body["created_tables"]) == {"people", "team", "order", "required", "people_team"}
    assert user_tables(database_url) == {"people", "team", "order", "required", "people_team"}
    with inspector(database_url) as found:
        association = {c["name"] for c in found.get_columns("people_team")}
        referenced = {fk["referred_table"] for fk in found.get_foreign_keys("people_team")}
    assert association == {"people_id", "team_id"}
    assert referenced == {"people", "team"}


def test_default_serves_exactly_the_whitelisted_operations(client: TestClient, load_payload: Payload) -> None:
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    assert served_operations(client) == DEFAULT_SERVED
    expected_routes = {f"{method.upper()} {path}" for path, methods in DEFAULT_SERVED.items() for method in methods}
    assert set(response.json()["routes"]) == expected_routes


NOT_SERVED = (404, 405)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/team", NOT_SERVED),  # /team whitelists only GET
        ("DELETE", "/team/1", NOT_SERVED),  # /team/{id} whitelists GET and PUT
        ("PATCH", "/team/1", NOT_SERVED),
        ("GET", "/order", NOT_SERVED),  # order gets a table but no route
        ("GET", "/order/1", NOT_SERVED),
        ("GET", "/required", NOT_SERVED),
        ("GET", "/team/query", (400, *NOT_SERVED)),  # no query route for team: at most a bad /team/{id}
        ("DELETE", "/people/1/team", NOT_SERVED),  # M:N: GET, PUT and PATCH are whitelisted, not DELETE
        ("DELETE", "/people/1/team/1", NOT_SERVED),  # nor the unlink route
    ],
)
def test_default_does_not_serve_operations_outside_the_whitelist(
    client: TestClient, load_payload: Payload, method: str, path: str, allowed: tuple[int, ...]
) -> None:
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201
    client.post("/people", json={"name": "Ann"})
    client.put("/team/1", json={"name": "Red"})
    response = client.request(method, path, json={"name": "x"} if method in ("POST", "PUT", "PATCH") else None)
    assert response.status_code in allowed, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert client.get("/team").json()["team"] == [{"id": 1, "name": "Red"}]


def test_default_serves_many_to_many_routes_both_ways(client: TestClient, load_payload: Payload) -> None:
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []
    ann = client.post("/people", json={"name": "Ann"}).json()["id"]
    for key, name in ((1, "Red"), (2, "Blue")):
        assert client.put(f"/team/{key}", json={"name": name}).status_code == 201
    assert client.put(f"/people/{ann}/team", json=[1, 2]).status_code == 200
    assert [t["name"] for t in client.get(f"/people/{ann}/team").json()["team"]] == ["Red", "Blue"]
    assert [p["name"] for p in client.get("/team/2/people").json()["people"]] == ["Ann"]  # the other side
    assert client.put("/team/2/people", json=[]).status_code == 200  # cleared from the other side
    assert [t["name"] for t in client.get(f"/people/{ann}/team").json()["team"]] == ["Red"]


def test_default_keeps_the_payload_summaries(client: TestClient, load_payload: Payload) -> None:
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/people"]["get"]["summary"] == "Get all items"
    assert paths["/people"]["post"]["summary"] == "Create an item"
    assert paths["/people/{id}"]["put"]["summary"] == "Put one item"
    # operations the payload gave no summary get a generated one
    assert paths["/team"]["get"]["summary"]


def test_default_people_round_trip(client: TestClient, load_payload: Payload) -> None:
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201
    created = client.post("/people", json={"name": "Ann"})
    assert created.status_code == 201, created.text
    assert client.get(created.headers["location"]).json() == {"id": created.json()["id"], "name": "Ann"}
    team = client.put("/team/7", json={"name": "Red"})
    assert team.status_code == 201, team.text
    assert client.get("/team").json()["team"] == [{"id": 7, "name": "Red"}]


def test_served_document_is_valid_openapi_3(client: TestClient, load_payload: Payload) -> None:
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201
    document = client.get("/openapi.json").json()
    errors = [error.message for error in openapi_validator().iter_errors(document)]
    assert errors == []


# -- foreign keys -----------------------------------------------------------------------------------------


def test_foreign_key_valid_creates_the_foreign_key_and_no_routes(
    client: TestClient, load_payload: Payload, database_url: str
) -> None:
    response = client.post("/generator", json=load_payload("foreign_key_valid.json"))
    assert response.status_code == 201, response.text
    assert response.json()["routes"] == []
    assert user_tables(database_url) == {"fk_relation", "fk_table"}
    with inspector(database_url) as found:
        keys = found.get_foreign_keys("fk_relation")
    assert [(k["constrained_columns"], k["referred_table"], k["referred_columns"]) for k in keys] == [
        (["fk_field"], "fk_table", ["id"])
    ]
    assert client.get("/openapi.json").json()["paths"] == {}
    assert client.get("/fk_relation").status_code == 404


def test_foreign_key_missing_table_is_rejected_and_creates_nothing(
    client: TestClient, load_payload: Payload, database_url: str, tmp_path: Path
) -> None:
    response = client.post("/generator", json=load_payload("foreign_key_missing_table.json"))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    pointers = [error["pointer"] for error in response.json()["errors"]]
    assert len(pointers) == 2, pointers
    assert any(p.endswith("/foreignKeys/0/fields") for p in pointers), pointers
    assert any(p.endswith("/foreignKeys/0/reference/resource") for p in pointers), pointers
    assert user_tables(database_url) == set()
    assert not (tmp_path / "payload.json").exists()
    assert client.get("/generator").json()["digest"] == ""


# -- admin_test_payload.json ------------------------------------------------------------------------------

UNKNOWN_PATHS = ["/peoples", "/peoples/{id}", "/teams", "/teams/{id}", "/orders", "/orders/{id}"]


def _pointer(path: str) -> str:
    return f"{PATHS}/{path.replace('~', '~0').replace('/', '~1')}"


def test_admin_test_payload_reports_every_path_naming_no_table(
    client: TestClient, load_payload: Payload, database_url: str
) -> None:
    payload = load_payload("admin_test_payload.json")
    assert "ignore_validation" not in payload  # validated, offline
    response = client.post("/generator", json=payload)
    assert response.status_code == 400, response.text
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {_pointer(path) for path in UNKNOWN_PATHS}
    assert user_tables(database_url) == set()


def test_admin_test_payload_with_ignore_validation_warns_and_serves_nothing(
    client: TestClient, load_payload: Payload, database_url: str
) -> None:
    payload = load_payload("admin_test_payload.json") | {"ignore_validation": True}
    response = client.post("/generator", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()
    for path in UNKNOWN_PATHS:
        assert any(f"'{path}'" in warning for warning in body["warnings"]), (path, body["warnings"])
    assert body["routes"] == []
    # mixed-case names become lowercase tables
    assert user_tables(database_url) == {"people", "team", "order", "people_team"}
    for path in ("/peoples", "/teams/1", "/orders", "/people"):
        assert client.get(path).status_code == 404, path


# -- all_types.json ---------------------------------------------------------------------------------------


def test_all_types_generates_one_table_with_fifteen_types(
    client: TestClient, load_payload: Payload, database_url: str
) -> None:
    response = client.post("/generator", json=load_payload("all_types.json"))
    assert response.status_code == 201, response.text
    with inspector(database_url) as found:
        columns = [c["name"] for c in found.get_columns("people")]
    assert len(columns) == 17  # name, id and one field per type
    assert set(served_operations(client)) == {"/people", "/people/{id}", "/people/query"}

