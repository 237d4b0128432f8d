"""Schema evolution in before/after form, on SQLite and PostgreSQL: generate, write rows, regenerate with a
change, and check what a client sees: the data kept, the new API working, or a 409 naming each change with
nothing changed. Also `POST /generator/plan`, `GET /generator` and `GET /generator/history`."""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from starlette.testclient import TestClient

from generator.models import ddl, evolution
from generator.models.engine import create_database_engine, for_writes
from generator.models.tables import build_metadata
from generator.payload import parse_payload
from tests import test_metadata_support as metadata_support
from tests.test_generation import columns, engine_for, field, generate, payload, table
from tests.test_metadata_generation import schema_of
from tests.test_metadata_support import PATIENT, VISIT, clinic_payload
from tests.test_metadata_support import generate as generate_md
from tests.test_products_support import Actor
from tests.test_relationships import ORG

MakeClient = Callable[..., TestClient]
graph = metadata_support.graph  # the fixture: patient and visit generated into data product clinic
PROBLEM_JSON = "application/problem+json"


def people(*extra: dict[str, Any], name: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `people` table: id, name (optional text), and any extra fields."""
    return table("people", field("id", "integer"), name or field("name"), *extra)


def seeded(client: TestClient, body: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    applied = generate(client, body)
    for row in rows:
        response = client.post("/people", json=row)
        assert response.status_code == 201, response.text
    return applied


def listed(client: TestClient, path: str = "/people") -> list[dict[str, Any]]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    return body if isinstance(body, list) else body[next(iter(k for k, v in body.items() if isinstance(v, list)))]


def kinds(operations: Iterable[dict[str, Any]]) -> set[tuple[str, str, str | None]]:
    return {(op["kind"], op["table"], op["column"]) for op in operations}


def rows_in(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    with engine_for(database_url) as engine, engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(statement))]


# -- additive changes: applied in the generation's transaction, rows kept ---------------------------------


ANN = [{"name": "Ann"}, {"name": "Bob"}]


UUID = "5f0c6c1e-3b5a-4c47-9a55-0f4d3c2b1a00"


@pytest.mark.parametrize(
    ("before", "first", "after", "operation", "write"),
    [
        # a new optional column: writable at once, the old rows read it as null
        ([], {"name": "Ann"}, [field("age", "integer")], ("add_column", "people", "age"), {"name": "Cy", "age": 40}),
        # a wider type: integer → number keeps every value (BIGINT → NUMERIC; SQLite: exact-number text)
        ([field("score", "integer")], {"name": "Ann", "score": 7}, [field("score", "number")],
         ("alter_type", "people", "score"), {"name": "Cy", "score": 2.5}),
        # a uuid string becomes a plain string: VARCHAR(36) → TEXT
        ([{"name": "code", "type": "string", "format": "uuid"}], {"name": "Ann", "code": UUID}, [field("code")],
         ("alter_type", "people", "code"), {"name": "Cy", "code": "not a uuid at all"}),
    ],
    ids=["new-column", "integer-to-number", "uuid-to-text"],
)
def test_additive_change_is_applied_and_rows_are_kept(
    client: TestClient, before: list[dict[str, Any]], first: dict[str, Any], after: list[dict[str, Any]],
    operation: tuple[str, str, str], write: dict[str, Any],
) -> None:  # fmt: skip
    seeded(client, payload(people(*before)), [first, {"name": "Bob"}])
    applied = generate(client, payload(people(*after)))
    ops = [op for op in applied["operations"] if op["kind"] not in ("add_route", "remove_route")]
    assert [(op["kind"], op["table"], op["column"]) for op in ops] == [operation]
    assert ops[0]["destructive"] is False and ops[0]["additive"] is True
    column = operation[2]
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", column: first.get(column)}
    assert client.get("/people/2").json() == {"id": 2, "name": "Bob", column: None}
    created = client.post("/people", json=write)
    assert created.status_code == 201, created.text
    assert client.get("/people/3").json() == {"id": 3, **write}


def test_unique_constraint_the_rows_satisfy_is_applied(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    applied = generate(client, payload(people(name=field("name", unique=True))))
    assert ("add_unique", "people", "name") in kinds(applied["operations"])
    assert client.post("/people", json={"name": "Ann"}).status_code == 409  # now enforced
    assert client.post("/people", json={"name": "Cy"}).status_code == 201


def test_new_column_is_writable_and_readable(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    applied = generate(client, payload(people(field("age", "integer"))))
    assert ("add_column", "people", "age") in kinds(applied["operations"])
    assert client.post("/people", json={"name": "Cy", "age": 40}).status_code == 201
    assert client.get("/people/3").json() == {"id": 3, "name": "Cy", "age": 40}
    assert client.patch("/people/1", json={"age": 31}).status_code in (200, 204)
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "age": 31}


def test_required_field_becoming_optional_is_additive(client: TestClient) -> None:
    seeded(client, payload(people(name=field("name", required=True))), ANN)
    applied = generate(client, payload(people()))
    assert [op["kind"] for op in applied["operations"] if op["table"] == "people" and "route" not in op["kind"]] == \
        ["alter_nullable"]
    assert client.post("/people", json={}).status_code == 201  # a person without a name, now allowed
    assert [p["name"] for p in listed(client)] == ["Ann", "Bob", None]


def test_new_table_new_pair_and_new_routes_keep_the_old_rows(client: TestClient, database_url: str) -> None:
    seeded(client, payload(people(), table("team"), paths={"/people": {"get": {}, "post": {}}}), ANN)
    assert client.get("/team").status_code == 404  # not whitelisted yet
    after = payload(people(), table("team"), table("pets"))
    after["data_resource_schema"]["data"]["relationships"] = {"manyToMany": [["people", "team"]]}
    after["data_resource_schema"]["api"]["apiSpec"]["paths"]["/people/{id}/team"] = {"get": {}, "put": {}}
    applied = generate(client, after)
    assert {"pets", "people_team"} <= set(applied["created_tables"])
    found = kinds(applied["operations"])
    assert {("add_table", "pets", None), ("add_table", "people_team", None)} <= found
    assert any(op["kind"] == "add_route" and op["to"] == "GET /team" for op in applied["operations"])
    assert [p["name"] for p in listed(client)] == ["Ann", "Bob"]
    assert client.post("/team", json={"name": "red"}).status_code == 201
    assert client.get("/pets").status_code == 200
    linked = client.put("/people/1/team", json=[1])
    assert linked.status_code in (200, 201, 204), linked.text
    assert rows_in(database_url, "SELECT people_id, team_id FROM people_team") == [(1, 1)]


# -- destructive changes: refused with 409 naming each, nothing changed -----------------------------------


DESTRUCTIVE = [
    # (after, change kind, column, words the sentence must contain)
    (payload(table("people", field("id", "integer"))), "drop_column", "name", ["'name'", "dropped"]),
    (payload(people(name=field("name", "integer"))), "alter_type", "name", ["'name'", "TEXT"]),
    (payload(people(name=field("name", required=True))), "alter_nullable", "name", ["'name'", "required"]),
    (payload(table("people", field("id", "integer"), field("full_name"))), "drop_column", "name", ["rename"]),
]
DESTRUCTIVE_IDS = ["drop-column", "type-change", "now-required", "rename"]


@pytest.mark.parametrize(("after", "kind", "column", "words"), DESTRUCTIVE, ids=DESTRUCTIVE_IDS)
def test_destructive_change_is_refused_and_nothing_changes(
    client: TestClient, database_url: str, tmp_path: Path, after: dict[str, Any], kind: str, column: str,
    words: list[str],
) -> None:  # fmt: skip
    applied = seeded(client, payload(people()), ANN)
    saved = (tmp_path / "payload.json").read_bytes()
    before = columns(database_url, "people")

    response = client.post("/generator", json=after)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert "allow_destructive" in problem["detail"]
    refused = [op for op in problem["operations"] if op["destructive"]]
    assert (kind, "people", column) in kinds(refused), refused
    assert any(all(w in d for w in words) for d in problem["differences"]), problem["differences"]
    # the table, its rows, the served API and the saved payload are as before
    assert columns(database_url, "people") == before
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann"}
    assert client.post("/people", json={"name": "Cy"}).status_code == 201
    assert client.get("/generator").json()["hash"] == applied["digest"]
    assert (tmp_path / "payload.json").read_bytes() == saved


def test_refused_generation_creates_none_of_its_new_tables(client: TestClient, database_url: str) -> None:
    seeded(client, payload(people()), ANN)
    response = client.post("/generator", json=payload(table("people", field("id", "integer")), table("pets")))
    assert response.status_code == 409, response.text
    assert ("add_table", "pets", None) in kinds(response.json()["operations"])  # planned, not applied
    assert "pets" not in {name for name, in rows_in(database_url, _TABLES[database_url.split(":")[0]])}
    assert client.get("/pets").status_code == 404


_TABLES = {"sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
           "postgresql+psycopg": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
           "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"}


# -- allow_destructive: the same changes, applied in one transaction --------------------------------------


def test_allow_destructive_drops_a_column_and_keeps_the_rows(client: TestClient, database_url: str) -> None:
    seeded(client, payload(people(field("age", "integer"))), [{"name": "Ann", "age": 30}, {"name": "Bob"}])
    applied = generate(client, payload(people(), allow_destructive=True))
    assert ("drop_column", "people", "age") in kinds(applied["operations"])
    assert "age" not in columns(database_url, "people")
    assert listed(client) == [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}]
    assert client.post("/people", json={"name": "Cy", "age": 3}).status_code == 400  # no longer a field


def test_allow_destructive_changes_a_type_whose_values_convert(client: TestClient) -> None:
    seeded(client, payload(people(field("age"))), [{"name": "Ann", "age": "30"}, {"name": "Bob"}])
    applied = generate(client, payload(people(field("age", "integer")), allow_destructive=True))
    change = next(op for op in applied["operations"] if op["kind"] == "alter_type")
    assert (change["column"], change["destructive"]) == ("age", True)
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "age": 30}
    assert client.post("/people", json={"name": "Cy", "age": "old"}).status_code == 400


def test_allow_destructive_makes_a_field_required_when_every_row_has_it(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    generate(client, payload(people(name=field("name", required=True)), allow_destructive=True))
    assert client.post("/people", json={}).status_code == 400
    assert client.get("/people/2").json() == {"id": 2, "name": "Bob"}


def test_allow_destructive_rename_is_a_drop_and_an_add(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    applied = generate(client, payload(table("people", field("id", "integer"), field("full_name")),
                                       allow_destructive=True))
    assert {("drop_column", "people", "name"), ("add_column", "people", "full_name")} <= kinds(applied["operations"])
    assert client.get("/people/1").json() == {"id": 1, "full_name": None}  # the values were not carried over


def test_payload_applied_with_allow_destructive_is_the_same_payload_without_it(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    applied = generate(client, payload(table("people", field("id", "integer")), allow_destructive=True))
    again = generate(client, payload(table("people", field("id", "integer"))), status=200)
    assert again["digest"] == applied["digest"] and again["operations"] == []


# -- changes the data forbids: 409 even with allow_destructive, nothing changed --------------------------


@pytest.mark.parametrize(
    ("rows", "after", "words"),
    [
        # a person has no name: name cannot become required
        ([{"name": "Ann"}, {}], payload(people(name=field("name", required=True))), ["'name'", "1 row(s)"]),
        # two people share a name: it cannot become unique
        ([{"name": "Ann"}, {"name": "Ann"}], payload(people(name=field("name", unique=True))), ["more than once"]),
        # a new required field without a default on a table with rows
        (ANN, payload(people(field("age", "integer", required=True))), ["'age'", "no value"]),
        # names are not numbers: SQLite would turn them into 0, PostgreSQL refuses them; both say so
        ([{"name": "Ann"}, {"name": "12"}], payload(people(name=field("name", "integer"))),
         ["'name'", "would not survive the conversion"]),
    ],
    ids=["nulls-under-not-null", "duplicates-under-unique", "required-column-on-rows", "values-not-converting"],
)
def test_change_the_data_violates_is_refused_even_with_allow_destructive(
    client: TestClient, database_url: str, rows: list[dict[str, Any]], after: dict[str, Any], words: list[str],
) -> None:  # fmt: skip
    applied = seeded(client, payload(people()), rows)
    before = columns(database_url, "people")
    response = client.post("/generator", json={**after, "allow_destructive": True})
    assert response.status_code == 409, response.text
    problem = response.json()
    assert "even with allow_destructive" in problem["detail"]
    assert any(all(w in d for w in words) for d in problem["differences"]), problem["differences"]
    assert columns(database_url, "people") == before
    assert len(listed(client)) == len(rows)
    assert client.get("/generator").json()["hash"] == applied["digest"]


def test_protecting_an_existing_field_is_refused_even_with_allow_destructive(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRG_EVOLUTION_KEY", base64.b64encode(os.urandom(32)).decode())
    seeded(client, payload(people()), ANN)
    protected = payload(people(name={"name": "name", "type": "string", "protected": True}), allow_destructive=True)
    protected["data_resource_schema"]["data"]["dataDictionary"][0]["encryptionSchema"] = {
        "*": {"type": "AES_256_GCM", "key": "DRG_EVOLUTION_KEY"}}
    response = client.post("/generator", json=protected)
    assert response.status_code == 409, response.text
    assert any("protected" in d and "encrypting" in d for d in response.json()["differences"])
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann"}


# -- SQLite recreates tables: rows that refer to them, and ids, survive ------------------------------------


def test_recreating_a_table_keeps_the_rows_that_refer_to_it_and_never_reuses_an_id(
    client: TestClient, database_url: str
) -> None:
    before = payload(people(field("age")), table("team"))
    before["data_resource_schema"]["data"]["relationships"] = {"manyToMany": [["people", "team"]]}
    seeded(client, before, [{"name": "Ann", "age": "30"}, {"name": "Bob"}, {"name": "Cy"}])
    client.post("/team", json={"name": "red"})
    with engine_for(database_url) as engine, engine.begin() as connection:
        connection.execute(text("INSERT INTO people_team (people_id, team_id) VALUES (1, 1), (2, 1)"))
    assert client.delete("/people/3").status_code in (200, 204)  # id 3 is spent

    after = payload(people(field("age", "integer")), table("team"), allow_destructive=True)  # recreate on SQLite
    after["data_resource_schema"]["data"]["relationships"] = {"manyToMany": [["people", "team"]]}
    generate(client, after)
    assert rows_in(database_url, "SELECT people_id, team_id FROM people_team ORDER BY 1") == [(1, 1), (2, 1)]
    assert client.post("/people", json={"name": "Dee"}).json()["id"] == 4
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "age": 30}


# -- POST /generator/plan ----------------------------------------------------------------------------------


def test_plan_lists_additive_operations_and_applies_nothing(client: TestClient, database_url: str) -> None:
    applied = seeded(client, payload(people()), ANN)
    response = client.post("/generator/plan", json=payload(people(field("age", "integer")), table("pets")))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {("add_column", "people", "age"), ("add_table", "pets", None)} <= kinds(body["operations"])
    assert body["destructive"] is False
    assert "age" not in columns(database_url, "people")
    assert client.get("/pets").status_code == 404
    assert client.get("/generator").json()["hash"] == applied["digest"]


def test_plan_of_a_destructive_payload_is_409_naming_each_change(client: TestClient, database_url: str) -> None:
    seeded(client, payload(people(field("age", "integer"))), [{"name": "Ann", "age": 30}])
    narrower = payload(table("people", field("id", "integer"), field("age")))  # name dropped, age as text
    response = client.post("/generator/plan", json=narrower)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert kinds(op for op in problem["operations"] if op["destructive"]) == {
        ("drop_column", "people", "name"), ("alter_type", "people", "age")}
    assert len(problem["differences"]) == 2
    assert "name" in columns(database_url, "people")
    allowed = client.post("/generator/plan", json={**narrower, "allow_destructive": True})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["destructive"] is True
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "age": 30}  # a plan applies nothing


def test_plan_of_the_applied_payload_has_no_operations(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    response = client.post("/generator/plan", json=payload(people()))
    assert response.status_code == 200, response.text
    assert response.json()["operations"] == []


def test_plan_of_an_invalid_payload_is_400_like_post_generator(client: TestClient) -> None:
    response = client.post("/generator/plan", json=payload(table("people", field("id", "integer"),
                                                                 primary_key=None)))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["errors"][0]["pointer"].startswith("/data_resource_schema")


# -- GET /generator and its history --------------------------------------------------------------------------


@pytest.fixture
def production(make_client: MakeClient) -> Iterator[TestClient]:
    client = make_client(app_env="production", auth_tokens=("tok1",))
    client.headers["Authorization"] = "Bearer tok1"
    yield client


def test_get_generator_shows_version_hash_time_and_author(production: TestClient) -> None:
    assert production.get("/generator").json()["version"] is None  # nothing generated yet
    first = generate(production, payload(people()))
    shown = production.get("/generator").json()
    assert shown["hash"] == first["digest"] and shown["version"] == first["version"]
    assert shown["created_by"] == "service-token"
    assert shown["created_at"].endswith("+00:00")
    assert shown["tables"] == ["people"]
    generate(production, payload(people(field("age", "integer"))))
    assert production.get("/generator").json()["version"] > shown["version"]


def test_history_lists_generations_newest_first_by_page(production: TestClient) -> None:
    digests = [generate(production, payload(people(*(field(f"f{i}") for i in range(n)))))["digest"]
               for n in range(3)]
    page = production.get("/generator/history", params={"limit": 2}).json()
    assert page["total"] == 3 and (page["offset"], page["limit"]) == (0, 2)
    assert [g["hash"] for g in page["generations"]] == digests[::-1][:2]
    assert [g["current"] for g in page["generations"]] == [True, False]
    assert all("payload" not in g and g["created_by"] == "service-token" for g in page["generations"])
    rest = production.get("/generator/history", params={"offset": 2, "limit": 2}).json()
    assert [g["hash"] for g in rest["generations"]] == digests[:1]
    bad = production.get("/generator/history", params={"limit": 0})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith(PROBLEM_JSON)


def test_restart_after_an_evolution_serves_the_evolved_tables(make_client: MakeClient) -> None:
    first = make_client()
    seeded(first, payload(people()), ANN)
    generate(first, payload(people(field("age", "integer"))))
    restarted = make_client()
    assert restarted.get("/people/1").json() == {"id": 1, "name": "Ann", "age": None}


def test_another_process_adopts_an_evolved_generation(make_client: MakeClient) -> None:
    writer, replica = make_client(poll_seconds=0), make_client(poll_seconds=0)
    seeded(writer, payload(people()), ANN)
    assert replica.app.runtime.refresh() is True
    generate(writer, payload(people(field("age", "integer")), allow_destructive=True))
    assert replica.app.runtime.refresh() is True  # the database matches the evolved generation
    assert replica.post("/people", json={"name": "Cy", "age": 5}).status_code == 201
    assert writer.get("/people/3").json() == {"id": 3, "name": "Cy", "age": 5}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_evolution_waiting_behind_a_reader_gives_up_and_leaves_the_api_serving(
    make_client: MakeClient, database_url: str
) -> None:
    client = make_client(lock_timeout_ms=300)
    seeded(client, payload(people()), ANN)
    with engine_for(database_url) as engine, engine.connect() as reader:
        reader.execute(text("SELECT * FROM people"))  # a long transaction holds its lock on people
        response = client.post("/generator", json=payload(people(field("age", "integer"))))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        reader.rollback()
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann"}
    assert "age" not in columns(database_url, "people")
    generate(client, payload(people(field("age", "integer"))))  # once the reader is done, it goes through
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "age": None}


# -- foreign keys and protected fields ----------------------------------------------------------------------


def pets(*, foreign_key: bool) -> dict[str, Any]:
    """`pets` with an owner column, which may refer to people."""
    body = table("pets", field("id", "integer"), field("name"), field("owner", "integer"))
    if foreign_key:
        body["tableSchema"]["foreignKeys"] = [{"fields": "owner", "reference": {"resource": "people", "fields": "id"}}]
    return body


@pytest.mark.parametrize(("owner", "applied"), [(1, True), (99, False)], ids=["owners-exist", "orphan-owner"])
def test_new_foreign_key_is_applied_unless_rows_refer_to_nothing(
    client: TestClient, owner: int, applied: bool
) -> None:
    seeded(client, payload(people(), pets(foreign_key=False)), ANN)
    assert client.post("/pets", json={"name": "Rex", "owner": owner}).status_code == 201
    response = client.post("/generator", json=payload(people(), pets(foreign_key=True), allow_destructive=True))
    if applied:
        assert response.status_code == 201, response.text
        assert ("add_foreign_key", "pets", "owner") in kinds(response.json()["operations"])
        assert client.post("/pets", json={"name": "Tom", "owner": 42}).status_code in (400, 409)  # now checked
        assert client.get("/pets/1").json()["owner"] == 1
    else:
        assert response.status_code == 409, response.text
        assert any("'pets'" in d and "refer to rows of 'people'" in d for d in response.json()["differences"])
        assert client.post("/pets", json={"name": "Tom", "owner": 42}).status_code == 201  # still unchecked


KEY = base64.b64encode(bytes(range(32))).decode()


def patients(*fields: dict[str, Any]) -> dict[str, Any]:
    body = table("people", field("id", "integer"), *fields)
    body["encryptionSchema"] = {"*": {"type": "AES_256_GCM", "key": "DRG_EVOLUTION_KEY"}}
    return body


def test_new_searchable_protected_field_adds_its_blind_index(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("DRG_EVOLUTION_KEY", KEY)
    seeded(client, payload(patients(field("name"))), ANN)
    ssn = {"name": "ssn", "type": "string", "protected": True, "searchable": True}
    applied = generate(client, payload(patients(field("name"), ssn)))
    assert {("add_column", "people", "ssn"), ("add_column", "people", "ssn__blind")} <= kinds(applied["operations"])
    assert not any(op["destructive"] for op in applied["operations"])
    assert client.post("/people", json={"name": "Cy", "ssn": "123-45"}).status_code == 201
    found = client.get("/people", params={"ssn": "eq.123-45"})
    assert found.status_code == 200, found.text
    assert [p["name"] for p in listed(client, "/people?ssn=eq.123-45")] == ["Cy"]
    assert rows_in(database_url, "SELECT ssn FROM people WHERE id = 3")[0][0] != "123-45"  # stored encrypted


def test_protected_field_becoming_searchable_on_rows_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRG_EVOLUTION_KEY", KEY)
    ssn = {"name": "ssn", "type": "string", "protected": True}
    seeded(client, payload(patients(field("name"), ssn)), [{"name": "Ann", "ssn": "1"}])
    response = client.post("/generator", json=payload(patients(field("name"), {**ssn, "searchable": True}),
                                                      allow_destructive=True))
    assert response.status_code == 409, response.text
    assert any("becomes searchable" in d and "blind index" in d for d in response.json()["differences"])
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "ssn": "1"}


# -- the metadata graph sees the evolved table ----------------------------------------------------------------


def test_an_evolved_table_gets_a_new_schema_version_in_the_metadata_graph(graph: Actor) -> None:
    assert schema_of(graph, "patient")["version"] == 1
    patient = copy.deepcopy(PATIENT)
    patient["tableSchema"]["fields"].append({"name": "phone", "type": "string"})
    applied = generate_md(graph, clinic_payload(patient, VISIT))  # no touch_database: false needed now
    assert ("add_column", "patient", "phone") in kinds(applied["operations"])
    assert (schema_of(graph, "patient")["version"], schema_of(graph, "visit")["version"]) == (2, 1)
    assert "phone" in [f["fieldPath"] for f in schema_of(graph, "patient")["value"]["fields"]]


def test_protected_field_no_longer_searchable_drops_its_blind_index_without_allow_destructive(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("DRG_EVOLUTION_KEY", KEY)
    ssn = {"name": "ssn", "type": "string", "protected": True}
    seeded(client, payload(patients(field("name"), {**ssn, "searchable": True})), [{"name": "Ann", "ssn": "1"}])
    applied = generate(client, payload(patients(field("name"), ssn)))
    assert ("drop_column", "people", "ssn__blind") in kinds(applied["operations"])
    assert "ssn__blind" not in columns(database_url, "people")
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "ssn": "1"}


def test_new_required_column_on_an_empty_table_is_applied_with_allow_destructive(client: TestClient) -> None:
    generate(client, payload(people()))
    after = payload(people(field("age", "integer", required=True)))
    assert client.post("/generator", json=after).status_code == 409
    applied = generate(client, {**after, "allow_destructive": True})
    assert next(op for op in applied["operations"] if op["column"] == "age")["destructive"] is True
    assert client.post("/people", json={"name": "Ann"}).status_code == 400  # age is required now
    assert client.post("/people", json={"name": "Ann", "age": 3}).status_code == 201


# -- alembic's diff has no noise: a database generated from a payload plans no change against it -------------


@pytest.mark.parametrize("name", ["default.json", "all_types.json", "foreign_key_valid.json", "org"])
def test_a_generated_database_plans_nothing_against_its_own_payload(
    client: TestClient, load_payload: Callable[[str], dict[str, Any]], name: str
) -> None:
    body = copy.deepcopy(ORG) if name == "org" else load_payload(name)
    generate(client, body)
    metadata = build_metadata(parse_payload(body))
    assert [c.sentence for c in ddl.plan(client.app.runtime.engine, metadata)] == []  # every table reflected


def test_dropping_a_unique_constraint_is_additive(client: TestClient) -> None:
    seeded(client, payload(people(name=field("name", unique=True))), ANN)
    applied = generate(client, payload(people()))
    assert [(op["kind"], op["destructive"]) for op in applied["operations"]] == [("drop_unique", False)]
    assert client.post("/people", json={"name": "Ann"}).status_code == 201  # duplicates allowed now


def test_changing_the_type_of_a_key_is_refused_even_with_allow_destructive(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    text_key = payload(table("people", field("id"), field("name")), allow_destructive=True)  # id as a string
    response = client.post("/generator", json=text_key)
    assert response.status_code == 409, response.text
    assert any("primary key" in d for d in response.json()["differences"])
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann"}


def test_allow_destructive_must_be_a_boolean(client: TestClient) -> None:
    response = client.post("/generator", json=payload(people(), allow_destructive="yes"))
    assert response.status_code == 400, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/allow_destructive"]


def test_a_change_the_database_refuses_while_running_is_refused_and_rolled_back(database_url: str) -> None:
    """Rows can change between the plan's checks and the ALTER (another writer): the database's refusal is
    an `EvolutionRefused` naming the change, and the transaction rolls back."""
    engine = create_database_engine(database_url)
    before = build_metadata(parse_payload(payload(people())))
    after = build_metadata(parse_payload(payload(people(name=field("name", required=True)))))
    with for_writes(engine).begin() as connection:
        before.create_all(connection)
        connection.execute(text("INSERT INTO people (id, name) VALUES (1, NULL)"))
    with pytest.raises(evolution.EvolutionRefused) as refused, for_writes(engine).begin() as connection:
        (change,) = evolution.plan(connection, after)
        assert change.blocked == "1 row(s) have no value for it"
        evolution.apply(connection, after, [replace(change, blocked=None)])  # as if the row came later
    assert "the database refused it" in refused.value.differences[0]
    with engine.connect() as connection:
        assert [c["nullable"] for c in inspect(connection).get_columns("people") if c["name"] == "name"] == [True]
        assert connection.execute(text("SELECT id, name FROM people")).all() == [(1, None)]
    engine.dispose()


# -- validation rules narrowed over stored rows (models/rules.py): no DDL, but a destructive change ----------


@pytest.mark.parametrize(
    ("before", "after", "stored", "refused"),
    [
        # a number stored as text on SQLite: the bound compares as a number, not as text ("5.5" > "10")
        (field("score", "number"), field("score", "number", minimum=10), 5.5, True),
        (field("score", "number"), field("score", "number", minimum=5), 5.5, False),
        (field("score", "integer", maximum=100), field("score", "integer", maximum=10), 42, True),
        (field("score", "integer"), field("score", "number", maximum=50), 42, False),  # widened type, bound met
        (field("score"), field("score", minLength=4), "abc", True),
        (field("score", enum=["a", "b"]), field("score", enum=["a"]), "b", True),
        (field("score"), {**field("score"), "format": "email"}, "not an address", True),
        (field("score"), {**field("score"), "format": "email"}, "ann@example.org", False),
        (field("score"), field("score", pattern="[a-z]+"), "abc1", True),  # anchored, as validation does
        (field("score"), field("score", pattern="[a-z]+"), "abc", False),
    ],
    ids=["minimum-number", "minimum-met", "maximum-integer", "maximum-widened", "minLength", "enum", "format",
         "format-met", "pattern-anchored", "pattern-met"],
)
def test_a_narrowed_rule_is_destructive_only_when_stored_values_break_it(
    client: TestClient, before: dict[str, Any], after: dict[str, Any], stored: Any, refused: bool
) -> None:
    seeded(client, payload(people(before)), [{"name": "Ann", "score": stored}])
    response = client.post("/generator", json=payload(people(after)))
    (change,) = [op for op in response.json()["operations"] if op["kind"] == "tighten_constraint"]
    assert change["column"] == "score" and change["destructive"] is refused, change
    if refused:
        assert response.status_code == 409, response.text
        assert any("'score'" in d and "1 row(s) hold a value it refuses" in d for d in response.json()["differences"])
        assert client.put("/people/1", json={"name": "Ann", "score": stored}).status_code == 200  # not applied
    else:
        assert response.status_code == 201, response.text
        assert "every stored value satisfies it" in change["description"]


def test_a_widened_rule_is_no_change(client: TestClient) -> None:
    seeded(client, payload(people(field("score", enum=["a"], maxLength=5))), [{"name": "Ann", "score": "a"}])
    applied = generate(client, payload(people(field("score", enum=["a", "b"], maxLength=9))))
    assert applied["operations"] == []


def test_a_narrowed_rule_is_applied_with_allow_destructive_and_the_rows_are_kept(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    plan = client.post("/generator/plan", json=payload(people(name=field("name", enum=["Bob"]))))
    assert plan.status_code == 409, plan.text
    assert ("tighten_constraint", "people", "name") in kinds(plan.json()["operations"])
    generate(client, payload(people(name=field("name", enum=["Bob"])), allow_destructive=True))
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann"}
    assert client.put("/people/1", json={"name": "Ann"}).status_code == 400  # what allow_destructive accepted


def test_a_narrowed_rule_of_a_protected_field_cannot_be_checked_over_rows(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRG_EVOLUTION_KEY", KEY)
    ssn = {"name": "ssn", "type": "string", "protected": True}
    seeded(client, payload(patients(field("name"), ssn)), [{"name": "Ann", "ssn": "12"}])
    narrowed = {**ssn, "constraints": {"maxLength": 9}}
    response = client.post("/generator", json=payload(patients(field("name"), narrowed)))
    assert response.status_code == 409, response.text
    assert any("'ssn'" in d and "cannot be checked" in d and "ciphertext" in d
               for d in response.json()["differences"])
    generate(client, payload(patients(field("name"), narrowed), allow_destructive=True))
    assert client.get("/people/1").json() == {"id": 1, "name": "Ann", "ssn": "12"}


def test_a_narrowed_rule_on_an_empty_table_is_additive(client: TestClient) -> None:
    generate(client, payload(people()))
    applied = generate(client, payload(people(name=field("name", enum=["Bob"]))))
    assert [(op["kind"], op["destructive"]) for op in applied["operations"]] == [("tighten_constraint", False)]


def test_touch_database_false_refuses_a_rule_its_rows_break(client: TestClient) -> None:
    seeded(client, payload(people()), ANN)
    response = client.post("/generator", json=payload(people(name=field("name", maxLength=2)), touch_database=False))
    assert response.status_code == 409, response.text
    assert any("'name'" in d and "2 row(s)" in d for d in response.json()["differences"])


# -- data checks of constraints on columns and tables the generation creates --------------------------------


def test_an_existing_field_referring_to_a_new_table_is_applied_when_no_row_holds_a_value(client: TestClient) -> None:
    before = table("pets", field("id", "integer"), field("name"), field("owner", "integer"))
    seeded(client, payload(people(), before), [])
    assert client.post("/pets", json={"name": "Rex"}).status_code == 201  # no owner
    after = copy.deepcopy(before)
    after["tableSchema"]["foreignKeys"] = [{"fields": "owner", "reference": {"resource": "owners", "fields": "id"}}]
    plan = client.post("/generator/plan", json=payload(people(), table("owners"), after))
    assert plan.status_code == 200, plan.text
    assert {("add_table", "owners", None), ("add_foreign_key", "pets", "owner")} <= kinds(plan.json()["operations"])
    generate(client, payload(people(), table("owners"), after))
    assert client.post("/pets", json={"name": "Tom", "owner": 5}).status_code in (400, 409)  # now checked


def test_a_database_error_that_is_not_the_clients_is_a_500_not_a_400(client: TestClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import ProgrammingError

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ProgrammingError("SELECT nothing FROM nowhere", {}, Exception("no such column: nothing"))

    monkeypatch.setattr(client.app.runtime, "generate", broken)
    response = client.post("/generator", json=payload(people()))
    assert response.status_code == 500, response.text
