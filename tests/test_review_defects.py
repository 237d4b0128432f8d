"""Defects found in review of the resource routes, each pinned on both databases: oversized key and unique
values, keys PUT could create but no URL reach, POST-query links that lost their filter, vague foreign-key
problems, GeoJSON that was not GeoJSON, NUL characters without a pointer, SQLite's busy database."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

import pytest
from sqlalchemy import ForeignKeyConstraint, MetaData, Table, create_engine, insert
from sqlalchemy.exc import DBAPIError
from starlette.testclient import TestClient

from generator.api.db_errors import problem_for
from generator.api.values import MAX_INDEXED_BYTES
from generator.codec import NulCharacter, loads_exact
from generator.models.tables import NAMING, resource_table
from generator.payload.specs import FieldSpec, ForeignKeySpec, ResourceSpec

PROBLEM_JSON = "application/problem+json"
JSON = {"content-type": "application/json"}


def field(name: str, type_: str = "string", **constraints: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **({"constraints": constraints} if constraints else {})}


def crud_paths(name: str) -> dict[str, Any]:
    return {
        f"/{name}": {"get": {}, "post": {}},
        f"/{name}/{{id}}": {"get": {}, "put": {}, "patch": {}, "delete": {}},
        f"/{name}/query": {"get": {}, "post": {}},
    }


def generation(*tables: tuple[str, list[dict[str, Any]], Any, list[dict[str, Any]]]) -> dict[str, Any]:
    entries = [{"name": name, "tableSchema": {"fields": fields, "primaryKey": key, "foreignKeys": fks}}
               for name, fields, key, fks in tables]
    paths: dict[str, Any] = {}
    for name, *_ in tables:
        paths |= crud_paths(name)
    return {"data_resource_schema": {"data": {"dataDictionary": entries}, "api": {"apiSpec": {"paths": paths}}}}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in body.get("errors", [])]


def noise(characters: int) -> str:
    """Text that does not compress, as PostgreSQL would compress a repetitive value into its index."""
    return secrets.token_hex(characters // 2 + 1)[:characters]


SKEY = generation(("skey", [field("code"), field("label", unique=True), field("note")], "code", []))
SKEY_WITHOUT_QUERY = generation(("skey", [field("code"), field("label")], "code", []))
del SKEY_WITHOUT_QUERY["data_resource_schema"]["api"]["apiSpec"]["paths"]["/skey/query"]


@pytest.fixture
def skey(client: TestClient) -> TestClient:
    assert client.post("/generator", json=SKEY).status_code == 201
    return client


# -- 1. values too large for an index ----------------------------------------------------------------------


def test_a_long_string_key_is_400_naming_the_field_and_the_limit(skey: TestClient) -> None:
    body = problem(skey.post("/skey", json={"code": noise(3000)}), 400)
    assert pointers(body) == ["/code"]
    assert str(MAX_INDEXED_BYTES) in body["errors"][0]["message"] and "code" in body["errors"][0]["message"]
    assert skey.get("/skey").json()["skey"] == []


def test_a_long_unique_value_is_400_on_post_put_and_patch(skey: TestClient) -> None:
    long = noise(3000)
    assert pointers(problem(skey.post("/skey", json={"code": "a", "label": long}), 400)) == ["/label"]
    assert skey.post("/skey", json={"code": "a", "label": "short"}).status_code == 201
    assert pointers(problem(skey.put("/skey/a", json={"label": long}), 400)) == ["/label"]
    assert pointers(problem(skey.patch("/skey/a", json={"label": long}), 400)) == ["/label"]
    assert skey.get("/skey/a").json()["label"] == "short"


def test_the_limit_counts_utf8_bytes_and_other_fields_are_unbounded(skey: TestClient) -> None:
    at_limit = "é" * (MAX_INDEXED_BYTES // 2)  # two bytes each
    assert skey.post("/skey", json={"code": "ok", "label": at_limit, "note": noise(100_000)}).status_code == 201
    assert pointers(problem(skey.post("/skey", json={"code": "é" * (MAX_INDEXED_BYTES // 2 + 1)}), 400)) == ["/code"]


def test_put_to_a_long_key_is_400_pointing_at_the_path(skey: TestClient) -> None:
    body = problem(skey.put(f"/skey/{noise(8000)}", json={"label": "x"}), 400)
    assert pointers(body) == ["/path/id/code"]
    assert skey.get(f"/skey/{noise(8000)}").status_code == 404  # reading a long key is merely absent


def test_postgresql_program_limit_is_a_400_naming_the_field(postgres_url: str) -> None:
    """The database's own limit, past the check (say a row written by something else): still a 400."""
    resource = ResourceSpec("skey", (FieldSpec("code"), FieldSpec("label", unique=True)), ("code",))
    metadata = MetaData(naming_convention=NAMING)
    table: Table = resource_table(metadata, resource)
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        metadata.create_all(engine)
        for row, name in (({"code": noise(3000)}, "code"), ({"code": "a", "label": noise(3000)}, "label")):
            with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
                connection.execute(insert(table), row)
            result = problem_for(table, caught.value)
            assert result.status == 400 and name in result.detail, result.detail
            assert [e["pointer"] for e in result.ext["errors"]] == [f"/{name}"]
    finally:
        engine.dispose()


# -- 4. keys no URL reaches ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/skey/%2e", "/skey/%2E%2E", "/skey/query"])
def test_put_refuses_keys_post_refuses(client: TestClient, path: str) -> None:
    """Without a query route, `PUT /skey/query` reaches the item route: it must refuse the key there."""
    assert client.post("/generator", json=SKEY_WITHOUT_QUERY).status_code == 201
    body = problem(client.put(path, json={"label": "x"}), 400)
    assert pointers(body) == ["/path/id/code"], body
    assert "code" in body["errors"][0]["message"]
    assert pointers(problem(client.post("/skey", json={"code": path.rsplit("/", 1)[1].replace("%2e", ".")
                                                       .replace("%2E", ".")}), 400)) == ["/code"]
    assert client.get("/skey").json()["skey"] == []


def test_put_to_the_query_path_is_405_when_the_query_route_is_served(skey: TestClient) -> None:
    problem(skey.put("/skey/query", json={"label": "x"}), 405)
    assert skey.get("/skey").json()["skey"] == []


# -- 5. POST query links -----------------------------------------------------------------------------------


@pytest.fixture
def crowd(skey: TestClient) -> TestClient:
    for index in range(7):
        assert skey.post("/skey", json={"code": f"k{index}", "note": "odd" if index % 2 else "even"}).status_code == 201
    return skey


def test_following_post_query_links_keeps_the_filter(crowd: TestClient) -> None:
    seen: list[str] = []
    page = crowd.post("/skey/query?limit=1", json={"note": "odd"})
    for _ in range(10):
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [row["code"] for row in body["skey"]]
        links = {link["rel"]: link for link in body["links"]}
        assert all(link["method"] == "POST" and link["body"] == {"note": "odd"} for link in links.values()), links
        if "next" not in links:
            break
        page = crowd.request(links["next"]["method"], links["next"]["href"], json=links["next"]["body"])
    assert seen == ["k1", "k3", "k5"]


def test_following_get_query_links_keeps_the_filter(crowd: TestClient) -> None:
    seen: list[str] = []
    href: str | None = "/skey/query?note=even&limit=2"
    while href and len(seen) < 10:
        body = crowd.get(href).json()
        assert all("method" not in link for link in body["links"])
        seen += [row["code"] for row in body["skey"]]
        href = {link["rel"]: link["href"] for link in body["links"]}.get("next")
    assert seen == ["k0", "k2", "k4", "k6"]


# -- 6. foreign keys that say which row ------------------------------------------------------------------

CLINICS = generation(
    ("clinic", [field("code"), field("name")], "code", []),
    ("visit", [field("id", "integer"), field("clinic_code")], "id",
     [{"fields": "clinic_code", "reference": {"resource": "clinic", "fields": "code"}}]),
)


@pytest.fixture
def clinics(client: TestClient) -> TestClient:
    assert client.post("/generator", json=CLINICS).status_code == 201
    assert client.post("/clinic", json={"code": "AB12", "name": "Main"}).status_code == 201
    return client


def test_a_missing_parent_names_field_value_and_table(clinics: TestClient) -> None:
    body = problem(clinics.post("/visit", json={"clinic_code": "ZZZ99"}), 409)
    assert "clinic_code 'ZZZ99' does not exist in clinic" in body["detail"], body
    assert body["fields"] == ["clinic_code"]
    created = clinics.post("/visit", json={"clinic_code": "AB12"})
    assert created.status_code == 201, created.text
    body = problem(clinics.patch(created.headers["location"], json={"clinic_code": "NOPE"}), 409)
    assert "clinic_code 'NOPE' does not exist in clinic" in body["detail"], body
    body = problem(clinics.put("/visit/5", json={"clinic_code": "NOPE"}), 409)
    assert "clinic_code 'NOPE' does not exist in clinic" in body["detail"], body


def test_a_referenced_row_names_the_referencing_table_and_count(clinics: TestClient) -> None:
    visits = [clinics.post("/visit", json={"clinic_code": "AB12"}).headers["location"] for _ in range(3)]
    body = problem(clinics.delete("/clinic/AB12"), 409)
    assert "3 rows of visit reference this clinic" in body["detail"], body
    assert body["fields"] == ["code"]
    for location in visits[:2]:
        assert clinics.delete(location).status_code == 204
    assert "1 row of visit references this clinic" in problem(clinics.delete("/clinic/AB12"), 409)["detail"]
    assert clinics.get("/clinic/AB12").status_code == 200


def test_foreign_key_problems_as_postgresql_reports_them() -> None:
    """PostgreSQL's own diagnostics (constraint name, detail) lead to the same sentences without a query."""
    metadata = MetaData(naming_convention=NAMING)
    resource_table(metadata, ResourceSpec("clinic", (FieldSpec("code"),), ("code",)))
    visit = resource_table(metadata, ResourceSpec("visit", (FieldSpec("id", "integer"), FieldSpec("clinic_code")),
                                                  ("id",), (ForeignKeySpec(("clinic_code",), "clinic", ("code",)),)))
    fk = next(c for c in visit.constraints if isinstance(c, ForeignKeyConstraint))

    class Diag:
        constraint_name = fk.name
        message_detail = 'Key (clinic_code)=(ZZZ99) is not present in table "clinic".'
        column_name = None

    class Orig(Exception):
        sqlstate = "23503"
        diag = Diag()

    error = DBAPIError("INSERT", {}, Orig("insert or update violates foreign key constraint"))
    result = problem_for(visit, error, None, {"clinic_code": "ZZZ99"})  # no engine: no query is possible
    assert result.status == 409 and result.detail == "clinic_code 'ZZZ99' does not exist in clinic"


# -- 7. GeoJSON -------------------------------------------------------------------------------------------

GEO = generation(("geo", [field("id", "integer"), field("shape", "geojson")], "id", []))
VALID_GEOJSON = [
    {"type": "Point", "coordinates": [1.5, 2]},
    {"type": "Point", "coordinates": [1, 2, 3]},
    {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
    {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
    {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
    {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 0]}]},
    {"type": "Feature", "geometry": None, "properties": None},
    {"type": "Feature", "id": "f1", "geometry": {"type": "Point", "coordinates": [0, 0]}, "properties": {"a": 1}},
    {"type": "FeatureCollection", "features": []},
    {"type": "Point", "coordinates": [0, 0], "bbox": [0, 0, 0, 0]},
]
INVALID_GEOJSON = [
    ({"type": "Foo"}, "type"),
    ({"type": "Point"}, "coordinates"),
    ({"type": "Point", "coordinates": [1]}, "position"),
    ({"type": "Point", "coordinates": [1, "2"]}, "position"),
    ({"type": "Feature", "properties": {}}, "geometry"),
    ({"type": "Feature", "geometry": {"type": "Point"}, "properties": None}, "/geometry/coordinates"),
    ({"type": "LineString", "coordinates": [[0, 0]]}, "two or more"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}, "linear ring"),
    ({"type": "FeatureCollection", "features": [{"type": "Point", "coordinates": [0, 0]}]}, "/features/0"),
    ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1]}]}, "/geometries/0"),
    # not an object at all: the served schema refuses those already
]


@pytest.fixture
def geo(client: TestClient) -> TestClient:
    assert client.post("/generator", json=GEO).status_code == 201
    return client


@pytest.mark.parametrize("value", VALID_GEOJSON, ids=[str(v["type"]) for v in VALID_GEOJSON])
def test_geojson_round_trips(geo: TestClient, value: dict[str, Any]) -> None:
    created = geo.post("/geo", json={"shape": value})
    assert created.status_code == 201, created.text
    assert geo.get(created.headers["location"]).json()["shape"] == value


@pytest.mark.parametrize(("value", "said"), INVALID_GEOJSON, ids=[s for _, s in INVALID_GEOJSON])
def test_what_is_not_geojson_is_400_naming_the_field(geo: TestClient, value: Any, said: str) -> None:
    body = problem(geo.post("/geo", json={"shape": value}), 400)
    assert pointers(body) == ["/shape"], body
    assert "GeoJSON" in body["errors"][0]["message"] and said in body["errors"][0]["message"], body
    assert problem(geo.put("/geo/1", json={"shape": value}), 400)
    assert geo.get("/geo").json()["geo"] == []


# -- 8. NUL characters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "a\\u0000b"}', ["/name"]),
        ('[{"name": "x"}, {}, {"name": "\\u0000"}]', ["/2/name"]),
        ('{"k\\u0000": 1, "a/b": ["\\u0000"]}', ["/a~1b/0", "/k\u0000"]),
        ('{"n": 1e400, "s": "\\u0000"}', ["/s"]),
    ],
)
def test_nul_is_refused_with_pointers(text: str, expected: list[str]) -> None:
    with pytest.raises(NulCharacter) as caught:
        loads_exact(text)
    assert caught.value.pointers == expected
    assert all(p.replace("\0", "\\u0000") in str(caught.value) for p in expected)
    assert "cannot be stored" in str(caught.value)


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    assert loads_exact('{"name": "\\\\u0000"}') == {"name": "\\u0000"}


def test_nul_in_a_body_is_400_naming_the_place(geo: TestClient) -> None:
    body = problem(geo.post("/geo", json={"shape": {"type": "Point", "coordinates": [0, 0], "name": "\0"}}), 400)
    assert "/shape/name" in body["detail"] and "NUL" in body["detail"], body
    assert geo.get("/geo").json()["geo"] == []


def test_nul_in_a_body_is_an_errors_item(geo: TestClient) -> None:
    body = problem(geo.post("/geo", json={"shape": {"type": "Point", "coordinates": [0, 0], "name": "\0"}}), 400)
    assert pointers(body) == ["/shape/name"], body


# -- 9. SQLite's write lock ------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the lock is SQLite's; PostgreSQL locks rows
def test_a_busy_sqlite_database_is_503_with_retry_after(skey: TestClient, database_url: str) -> None:
    """A write waits out SQLite's busy timeout (5 s) behind another writer, then is asked to retry."""
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=0.1)
    try:
        holder.execute("BEGIN IMMEDIATE")
        response = skey.post("/skey", json={"code": "a"})
        assert "retry" in problem(response, 503)["detail"]
        assert response.headers["retry-after"] == "1"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert skey.post("/skey", json={"code": "a"}).status_code == 201


def test_automatic_keys_used_up_are_a_409_naming_the_key(client: TestClient) -> None:
    """Found by schemathesis: after a client takes the largest 64-bit key, the next automatic key does not
    exist (SQLite said 'database or disk is full' with a 500, PostgreSQL's sequence ran out)."""
    table = {"name": "auto", "tableSchema": {"primaryKey": "id", "fields": [
        {"name": "id", "type": "integer"}, {"name": "label", "type": "string"}]}}  # fmt: skip
    payload = {"data_resource_schema": {"data": {"dataDictionary": [table]},
                                        "api": {"apiSpec": {"paths": {"/auto": {"post": {}}}}}}}
    assert client.post("/generator", json=payload).status_code == 201
    assert client.post("/auto", json={"id": 2**63 - 1, "label": "last"}).status_code == 201
    refused = client.post("/auto", json={"label": "one more"})
    assert refused.status_code == 409, refused.text
    assert "id" in refused.json()["detail"] and refused.json()["fields"] == ["id"]
    assert client.post("/auto", json={"id": 5, "label": "explicit"}).status_code == 201
