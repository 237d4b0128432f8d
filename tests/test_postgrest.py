"""The PostgREST-compatible surface (/rest): PostgREST's shapes, statuses and error bodies, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from generator.hooks import hookimpl

OBJECT = "application/vnd.pgrst.object+json"
RETURN_ROWS = {"Prefer": "return=representation"}


def field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def payload() -> dict[str, Any]:
    """`person` (every surface operation), `pet` referencing it (read and insert only), `log` (read only)."""
    person = {"name": "person", "tableSchema": {"primaryKey": "id", "fields": [
        field("id", "integer"), field("name", constraints={"required": True}), field("age", "integer"),
        field("email", constraints={"unique": True})]}}  # fmt: skip
    pet = {"name": "pet", "tableSchema": {"primaryKey": "id", "fields": [
        field("id", "integer"), field("owner", "integer"), field("kind")],
        "foreignKeys": [{"fields": "owner", "reference": {"resource": "person", "fields": "id"}}]}}  # fmt: skip
    log = {"name": "log", "tableSchema": {"primaryKey": "id", "fields": [field("id", "integer"), field("text")]}}
    paths = {
        "/person": {"get": {}, "post": {}},
        "/person/{id}": {"get": {}, "patch": {}, "delete": {}},
        "/pet": {"get": {}, "post": {}},
        "/log": {"get": {}},
    }
    return {"data_resource_schema": {"data": {"dataDictionary": [person, pet, log]},
                                     "api": {"apiSpec": {"paths": paths}}}}


@pytest.fixture
def rest(client: TestClient) -> TestClient:
    """A service with three people (Ann 30, Bob 40, Cy without age) and Ann's two pets."""
    assert client.post("/generator", json=payload()).status_code == 201
    people = [{"name": "Ann", "age": 30, "email": "ann@x.org"}, {"name": "Bob", "age": 40, "email": "bob@x.org"},
              {"name": "Cy", "email": "cy@x.org"}]
    assert client.post("/rest/person", json=people).status_code == 201
    assert client.post("/rest/pet", json=[{"owner": 1, "kind": "cat"}, {"owner": 1, "kind": "dog"}]).status_code == 201
    return client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """PostgREST's error body: exactly code, message, details and hint."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details", "hint"}, body
    assert body["code"] == code and body["message"], body
    return body


# -- reads --------------------------------------------------------------------------------------------------


def test_reads_are_bare_arrays_filtered_and_ordered(rest: TestClient) -> None:
    response = rest.get("/rest/person?age=gte.30&order=age.desc&select=name,age")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == [{"name": "Bob", "age": 40}, {"name": "Ann", "age": 30}]
    assert response.headers["content-range"] == "0-1/*"
    either = rest.get("/rest/person?or=(age.is.null,name.eq.Ann)&select=name&order=name")
    assert either.json() == [{"name": "Ann"}, {"name": "Cy"}]
    assert rest.get("/rest/person?name=in.(Zed)").json() == []


def test_range_header_and_limit_offset_with_counts(rest: TestClient) -> None:
    counted = {"Range": "0-1", "Range-Unit": "items", "Prefer": "count=exact"}
    ranged = rest.get("/rest/person?select=id", headers=counted)
    assert ranged.status_code == 206, ranged.text
    assert ranged.headers["content-range"] == "0-1/3"
    assert ranged.json() == [{"id": 1}, {"id": 2}]
    paged = rest.get("/rest/person?select=id&offset=1&limit=5", headers={"Prefer": "count=exact"})
    assert paged.status_code == 206 and paged.headers["content-range"] == "1-2/3"
    whole = rest.get("/rest/person?select=id", headers={"Prefer": "count=exact"})
    assert whole.status_code == 200 and whole.headers["content-range"] == "0-2/3"
    planned = rest.get("/rest/person?select=id", headers={"Prefer": "count=planned"})  # PostgreSQL: an estimate
    assert planned.headers["content-range"].split("/")[1].isdigit()
    both = rest.get("/rest/person?select=id&limit=2", headers={"Range": "1-5"})
    assert both.json() == [{"id": 2}] and both.headers["content-range"] == "1-1/*"
    none = rest.get("/rest/person?limit=0", headers={"Prefer": "count=estimated"})
    assert none.json() == [] and none.headers["content-range"] == "*/3"


def test_unsatisfiable_ranges_are_416(rest: TestClient) -> None:
    assert_error(rest.get("/rest/person", headers={"Range": "5-2"}), 416, "PGRST103")
    beyond = rest.get("/rest/person?offset=10", headers={"Prefer": "count=exact"})
    assert_error(beyond, 416, "PGRST103")
    assert beyond.headers["content-range"] == "*/3"


def test_single_object_or_406(rest: TestClient) -> None:
    one = rest.get("/rest/person?name=eq.Bob&select=name", headers={"Accept": OBJECT})
    assert one.status_code == 200, one.text
    assert one.headers["content-type"].startswith(OBJECT)
    assert one.json() == {"name": "Bob"}
    many = assert_error(rest.get("/rest/person", headers={"Accept": OBJECT}), 406, "PGRST116")
    assert many["details"] == "The result contains 3 rows"
    assert_error(rest.get("/rest/person?name=eq.Zed", headers={"Accept": OBJECT}), 406, "PGRST116")


def test_select_with_embeds_both_ways(rest: TestClient) -> None:
    people = rest.get("/rest/person?select=name,pet(kind)&name=eq.Ann").json()
    assert people == [{"name": "Ann", "pet": [{"kind": "cat"}, {"kind": "dog"}]}]
    pets = rest.get("/rest/pet?select=kind,person(name)&order=kind").json()
    assert pets == [{"kind": "cat", "person": {"name": "Ann"}}, {"kind": "dog", "person": {"name": "Ann"}}]


def test_head_options_csv_and_stripped_nulls(rest: TestClient) -> None:
    head = rest.head("/rest/person", headers={"Prefer": "count=exact"})
    assert head.status_code == 200 and head.content == b"" and head.headers["content-range"] == "0-2/3"
    assert rest.options("/rest/log").headers["allow"] == "GET, HEAD, OPTIONS"
    csv = rest.get("/rest/person?select=name,age&order=id", headers={"Accept": "text/csv"})
    assert csv.text.splitlines() == ["name,age", "Ann,30", "Bob,40", "Cy,"]
    stripped_nulls = {"Accept": "application/json;nulls=stripped"}
    stripped = rest.get("/rest/person?name=eq.Cy&select=name,age", headers=stripped_nulls)
    assert stripped.json() == [{"name": "Cy"}]


# -- inserts ------------------------------------------------------------------------------------------------


def test_insert_returns_minimal_by_default_and_rows_when_asked(rest: TestClient) -> None:
    minimal = rest.post("/rest/person", json={"name": "Dee", "email": "dee@x.org"})
    assert minimal.status_code == 201 and minimal.content == b""
    rows = rest.post("/rest/person?select=id,name", json=[{"name": "Eve"}, {"name": "Fay"}], headers=RETURN_ROWS)
    assert rows.status_code == 201, rows.text
    assert rows.json() == [{"id": 5, "name": "Eve"}, {"id": 6, "name": "Fay"}]
    assert rows.headers["preference-applied"] == "return=representation"
    one = rest.post("/rest/person", json={"name": "Gus"}, headers={**RETURN_ROWS, "Accept": OBJECT})
    assert one.json() == {"id": 7, "name": "Gus", "age": None, "email": None}
    located = rest.post("/rest/person", json={"name": "Hal"}, headers={"Prefer": "return=headers-only"})
    assert located.headers["location"] == "/rest/person?id=eq.8"
    empty = rest.post("/rest/person", json=[], headers=RETURN_ROWS)
    assert empty.status_code == 201 and empty.json() == []


def test_columns_limits_the_keys_read(rest: TestClient) -> None:
    rows = rest.post("/rest/person?columns=name", json=[{"name": "Ida", "age": 99}], headers=RETURN_ROWS)
    assert rows.json()[0]["age"] is None
    assert_error(rest.post("/rest/person?columns=nope", json=[{"name": "x"}]), 400, "PGRST204")


def test_single_object_insert_of_many_rows_writes_nothing(rest: TestClient) -> None:
    refused = rest.post("/rest/person", json=[{"name": "J"}, {"name": "K"}], headers={**RETURN_ROWS, "Accept": OBJECT})
    assert_error(refused, 406, "PGRST116")
    assert len(rest.get("/rest/person").json()) == 3


def test_upserts_merge_or_ignore_duplicates(rest: TestClient) -> None:
    merge = {"Prefer": "return=representation,resolution=merge-duplicates"}
    merged = rest.post("/rest/person", json=[{"id": 1, "name": "Ann B"}, {"id": 9, "name": "Nine"}], headers=merge)
    assert merged.status_code == 201, merged.text
    assert merged.json() == [{"id": 1, "name": "Ann B", "age": 30, "email": "ann@x.org"},
                             {"id": 9, "name": "Nine", "age": None, "email": None}]  # unsent columns are kept
    by_email = rest.post("/rest/person?on_conflict=email", json={"name": "Bobby", "email": "bob@x.org"}, headers=merge)
    assert by_email.json() == [{"id": 2, "name": "Bobby", "age": 40, "email": "bob@x.org"}]
    ignore = {"Prefer": "return=representation,resolution=ignore-duplicates"}
    ignored = rest.post("/rest/person", json=[{"id": 1, "name": "No"}, {"id": 10, "name": "Ten"}], headers=ignore)
    assert [row["id"] for row in ignored.json()] == [10]
    assert rest.get("/rest/person?id=eq.1&select=name").json() == [{"name": "Ann B"}]
    assert_error(rest.post("/rest/person?on_conflict=name", json={"name": "x"}, headers=merge), 400, "42P10")


def test_merge_needs_an_update_route_whitelisted(rest: TestClient) -> None:
    merge = {"Prefer": "resolution=merge-duplicates"}
    assert_error(rest.post("/rest/pet", json={"id": 1, "kind": "cow"}, headers=merge), 405, "PGRST117")
    ignored = rest.post("/rest/pet", json={"id": 1, "kind": "cow"}, headers={"Prefer": "resolution=ignore-duplicates"})
    assert ignored.status_code == 201


def test_insert_errors_carry_sqlstates(rest: TestClient) -> None:
    duplicate = assert_error(rest.post("/rest/person", json={"name": "x", "email": "ann@x.org"}), 409, "23505")
    assert "email" in duplicate["message"]
    assert_error(rest.post("/rest/pet", json={"owner": 99, "kind": "cow"}), 409, "23503")
    assert_error(rest.post("/rest/person", json={"age": 1}), 400, "23502")
    assert_error(rest.post("/rest/person", json={"name": "x", "age": "old"}), 400, "22P02")
    assert_error(rest.post("/rest/person", json={"nme": "x"}), 400, "PGRST204")
    assert_error(rest.post("/rest/person", content=b"{", headers={"Content-Type": "application/json"}), 400,
                 "PGRST102")
    assert_error(rest.post("/rest/person", content=b"name=x", headers={"Content-Type": "text/plain"}), 415,
                 "PGRST107")
    bulk = assert_error(rest.post("/rest/person", json=[{"name": "ok"}, {"name": "x", "email": "bob@x.org"}]),
                        409, "23505")
    assert "Row 1" in bulk["message"]
    assert len(rest.get("/rest/person").json()) == 3


# -- filtered updates and deletes ---------------------------------------------------------------------------


def test_patch_by_filter(rest: TestClient) -> None:
    minimal = rest.patch("/rest/person?age=gte.30", json={"age": 50})
    assert minimal.status_code == 204 and minimal.headers["content-range"] == "0-1/*"
    assert rest.get("/rest/person?age=eq.50&select=id").json() == [{"id": 1}, {"id": 2}]
    rows = rest.patch("/rest/person?id=eq.3&select=name,age", json={"age": 7}, headers=RETURN_ROWS)
    assert rows.status_code == 200 and rows.json() == [{"name": "Cy", "age": 7}]
    counted = rest.patch("/rest/person?id=eq.99", json={"age": 1}, headers={"Prefer": "count=exact"})
    assert counted.status_code == 204 and counted.headers["content-range"] == "*/0"


def test_patch_refusals(rest: TestClient) -> None:
    assert_error(rest.patch("/rest/person", json={"age": 1}), 400, "21000")
    assert_error(rest.patch("/rest/person?id=eq.1", json={"id": 5}), 400, "428C9")
    assert_error(rest.patch("/rest/person?id=eq.1&limit=1", json={"age": 1}), 400, "PGRST100")
    assert_error(rest.patch("/rest/person?id=eq.1", json={"email": "bob@x.org"}), 409, "23505")
    assert_error(rest.patch("/rest/person?agee=eq.1", json={"age": 1}), 400, "PGRST100")
    many = rest.patch("/rest/person?age=gte.30", json={"age": 1}, headers={**RETURN_ROWS, "Accept": OBJECT})
    assert_error(many, 406, "PGRST116")
    assert rest.get("/rest/person?age=eq.1").json() == []  # rolled back
    assert_error(rest.patch("/rest/pet?id=eq.1", json={"kind": "cow"}), 405, "PGRST117")


def test_delete_by_filter(rest: TestClient) -> None:
    assert_error(rest.delete("/rest/person"), 400, "21000")
    referenced = assert_error(rest.delete("/rest/person?id=eq.1"), 409, "23503")
    assert "pet" in referenced["message"]
    gone = rest.delete("/rest/person?id=in.(2,3)&select=name", headers=RETURN_ROWS)
    assert gone.status_code == 200 and sorted(r["name"] for r in gone.json()) == ["Bob", "Cy"]
    assert rest.delete("/rest/person?id=eq.2").status_code == 204
    assert [r["id"] for r in rest.get("/rest/person").json()] == [1]


class AgeLimit:
    """A plugin, registered as a third party's would be: callers only reach people aged 35 or more."""

    @hookimpl
    def drg_row_filter(self, principal: Any, resource: str, table: Any) -> Any:
        return table.c.age >= 35 if resource == "person" else None


def test_a_plugins_row_filter_bounds_every_operation(make_client: Callable[..., TestClient]) -> None:
    """The authorization hook's slot: a row filter limits reads and writes alike on this surface."""
    filtered = make_client(plugins=(AgeLimit(),))
    assert filtered.post("/generator", json=payload()).status_code == 201
    people = [{"name": "Ann", "age": 30, "email": "ann@x.org"}, {"name": "Bob", "age": 40, "email": "bob@x.org"},
              {"name": "Cy", "email": "cy@x.org"}]
    assert filtered.post("/rest/person", json=people).status_code == 201
    assert [r["name"] for r in filtered.get("/rest/person").json()] == ["Bob"]
    assert filtered.patch("/rest/person?name=eq.Ann", json={"age": 1}, headers=RETURN_ROWS).json() == []
    assert filtered.delete("/rest/person?name=eq.Cy", headers=RETURN_ROWS).json() == []
    assert [r["name"] for r in filtered.get("/person?order=id").json()["person"]] == ["Bob"]  # native too


# -- routing and errors -------------------------------------------------------------------------------------


def test_the_whitelist_decides_the_methods(rest: TestClient) -> None:
    refused = assert_error(rest.post("/rest/log", json={"text": "x"}), 405, "PGRST117")
    assert "whitelist" in refused["details"]
    assert rest.post("/rest/log", json={"text": "x"}).headers["allow"] == "GET, HEAD, OPTIONS"
    assert_error(rest.delete("/rest/pet?id=eq.1"), 405, "PGRST117")
    assert_error(rest.put("/rest/person?id=eq.1", json={"name": "x"}), 405, "PGRST117")


def test_unknown_tables_rpc_profiles_and_paths(rest: TestClient) -> None:
    missing = assert_error(rest.get("/rest/persn"), 404, "PGRST205")
    assert missing["hint"] == "Perhaps you meant the table 'public.person'"
    assert_error(rest.get("/rest/rpc/anything"), 404, "PGRST202")
    assert_error(rest.get("/rest/person/1"), 404, "PGRST125")
    assert_error(rest.get("/rest/"), 404, "PGRST125")
    assert_error(rest.get("/rest/person", headers={"Accept-Profile": "private"}), 406, "PGRST106")
    assert rest.get("/rest/person", headers={"Accept-Profile": "public"}).status_code == 200
    assert_error(rest.get("/rest/person", headers={"Accept": "text/html"}), 406, "PGRST107")
    assert_error(rest.get("/rest/person?order=nope.asc"), 400, "PGRST100")
    assert_error(rest.get("/rest/person?limit=x"), 400, "PGRST100")


def test_rest_is_a_reserved_table_name(client: TestClient) -> None:
    entry = {"name": "rest", "tableSchema": {"primaryKey": "id", "fields": [field("id", "integer")]}}
    refused = client.post("/generator", json={"data_resource_schema": {"data": {"dataDictionary": [entry]},
                                                                       "api": {"apiSpec": {"paths": {}}}}})
    assert refused.status_code == 400, refused.text


def test_the_prefix_is_configurable(make_client: Any) -> None:
    client = make_client(rest_prefix="/pg")
    assert client.post("/generator", json=payload()).status_code == 201
    assert client.get("/pg/log").json() == []
    assert client.get("/rest/log").status_code == 404
