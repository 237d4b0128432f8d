"""Generated resource routes: primary keys of every kind, pagination, CRUD and exact-match queries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

PROBLEM_JSON = "application/problem+json"


# -- payload helpers ------------------------------------------------------------------------------------


def field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def crud_paths(name: str) -> dict[str, Any]:
    return {
        f"/{name}": {"get": {}, "post": {}},
        f"/{name}/{{id}}": {"get": {}, "put": {}, "patch": {}, "delete": {}},
        f"/{name}/query": {"get": {}, "post": {}},
    }


def one_table(fields: list[dict[str, Any]], primary_key: str | list[str], name: str = "t") -> dict[str, Any]:
    entry = {"name": name, "tableSchema": {"fields": fields, "primaryKey": primary_key}}
    api = {"apiSpec": {"paths": crud_paths(name)}}
    return {"data_resource_schema": {"data": {"dataDictionary": [entry]}, "api": api}}


PEOPLE = one_table([field("person_id", "integer"), field("name"), field("age", "integer"),
                    field("email", constraints={"required": True})], "person_id")  # fmt: skip


@pytest.fixture
def people(client: TestClient) -> TestClient:
    """A service serving table `t` keyed by an auto-increment `person_id`, with a required `email`."""
    response = client.post("/generator", json=PEOPLE)
    assert response.status_code == 201, response.text
    return client


def add(client: TestClient, **row: Any) -> Any:
    response = client.post("/t", json={"email": "x@example.org", **row})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_problem(response: Any, status: int, pointer: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status
    if pointer is not None:
        assert pointer in [e["pointer"] for e in body.get("errors", [])], body
    return body


# -- primary keys ---------------------------------------------------------------------------------------


def test_auto_increment_key_of_any_name(people: TestClient) -> None:
    response = people.post("/t", json={"name": "Ann", "email": "ann@example.org"})
    assert response.status_code == 201, response.text
    assert response.json() == {"message": response.json()["message"], "id": 1}
    assert response.json()["message"]
    assert response.headers["location"] == "/t/1"
    assert people.post("/t", json={"name": "Bob", "email": "bob@example.org"}).json()["id"] == 2
    assert people.get("/t/1").json() == {"person_id": 1, "name": "Ann", "age": None, "email": "ann@example.org"}


def test_auto_increment_key_may_be_given(people: TestClient) -> None:
    assert add(people, person_id=40, name="Ann") == 40
    assert_problem(people.post("/t", json={"person_id": 40, "email": "again@example.org"}), 409)
    assert people.get("/t/40").json()["name"] == "Ann"


@pytest.mark.parametrize(
    "explicit",
    [
        ("POST", "/t", {"person_id": 1}),  # a client-chosen key through POST
        ("PUT", "/t/1", {}),  # or through PUT at an absent key
    ],
)
def test_generated_keys_skip_keys_chosen_by_clients(
    people: TestClient, explicit: tuple[str, str, dict[str, Any]]
) -> None:
    method, path, key = explicit
    assert people.request(method, path, json={"email": "chosen@example.org", **key}).status_code == 201
    generated = people.post("/t", json={"email": "generated@example.org"})
    assert generated.status_code == 201, generated.text
    assert generated.json()["id"] != 1
    assert people.get("/t/1").json()["email"] == "chosen@example.org"


STRING_KEY = one_table([field("code"), field("label")], "code")
COMPOSITE = one_table([field("a", "integer"), field("b"), field("v")], ["a", "b"])


def test_string_key_must_be_given(client: TestClient) -> None:
    assert client.post("/generator", json=STRING_KEY).status_code == 201
    assert_problem(client.post("/t", json={"label": "no key"}), 400, "/code")
    created = client.post("/t", json={"code": "abc", "label": "first"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "abc"
    assert created.headers["location"] == "/t/abc"
    assert client.get("/t/abc").json() == {"code": "abc", "label": "first"}
    assert_problem(client.post("/t", json={"code": "abc"}), 409)


@pytest.mark.parametrize(
    "code",
    [
        "a b",  # a space must be percent-encoded in the Location header
        "é",  # so must non-ASCII text (a header is latin-1 at most)
        "100%",
    ],
)
def test_location_of_a_string_key_can_be_followed(client: TestClient, code: str) -> None:
    assert client.post("/generator", json=STRING_KEY).status_code == 201
    created = client.post("/t", json={"code": code, "label": "odd"})
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.isascii() and " " not in location, location
    assert client.get(location).json() == {"code": code, "label": "odd"}


@pytest.mark.parametrize(
    ("table", "row", "pointer"),
    [
        (STRING_KEY, {"code": "x/y"}, "/code"),  # a slash in a key
        (STRING_KEY, {"code": "query"}, "/code"),  # the key of the query route
        (STRING_KEY, {"code": "."}, "/code"),  # dot segments, which clients remove from paths
        (STRING_KEY, {"code": ".."}, "/code"),
        (COMPOSITE, {"a": 1, "b": "x,y"}, "/b"),  # the separator of composite keys, inside a part
        (COMPOSITE, {"a": 1, "b": "p/q"}, "/b"),
    ],
    ids=["slash", "query", "dot", "dot-dot", "composite-comma", "composite-slash"],
)
def test_a_key_no_url_can_reach_is_refused(
    client: TestClient, table: dict[str, Any], row: dict[str, Any], pointer: str
) -> None:
    """A key the routes cannot address is refused up front (the README promises a 400), not stored where no
    GET can reach it."""
    assert client.post("/generator", json=table).status_code == 201
    created = assert_problem(client.post("/t", json=row), 400, pointer)
    assert created["errors"]
    assert client.get("/t").json()["t"] == []


UUID_KEY = one_table([field("key", "string", format="uuid"), field("label")], "key")


def test_uuid_key_is_generated_when_absent(client: TestClient) -> None:
    assert client.post("/generator", json=UUID_KEY).status_code == 201
    created = client.post("/t", json={"label": "generated"})
    assert created.status_code == 201, created.text
    key = created.json()["id"]
    assert str(uuid.UUID(key)) == key
    assert created.headers["location"] == f"/t/{key}"
    assert client.get(f"/t/{key}").json() == {"key": key, "label": "generated"}
    other = client.post("/t", json={"label": "another"}).json()["id"]
    assert other != key


def test_uuid_key_may_be_given_and_must_be_a_uuid(client: TestClient) -> None:
    assert client.post("/generator", json=UUID_KEY).status_code == 201
    given = "6f1c3a0e-1111-4222-8333-444455556666"
    assert client.post("/t", json={"key": given}).json()["id"] == given
    assert_problem(client.post("/t", json={"key": "not-a-uuid"}), 400, "/key")


@pytest.fixture
def composite(client: TestClient) -> TestClient:
    response = client.post("/generator", json=COMPOSITE)
    assert response.status_code == 201, response.text
    return client


def test_composite_key_create_and_read(composite: TestClient) -> None:
    created = composite.post("/t", json={"a": 1, "b": "x", "v": "first"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == {"a": 1, "b": "x"}
    assert created.headers["location"] == "/t/1,x"
    assert composite.get("/t/1,x").json() == {"a": 1, "b": "x", "v": "first"}
    assert_problem(composite.get("/t/1,y"), 404)
    assert_problem(composite.post("/t", json={"a": 1, "b": "x"}), 409)


def test_composite_key_replace_update_delete(composite: TestClient) -> None:
    composite.post("/t", json={"a": 1, "b": "x", "v": "first"})
    put = composite.put("/t/2,y", json={"v": "put"})
    assert put.status_code == 201, put.text
    assert put.headers["location"] == "/t/2,y"
    assert composite.patch("/t/1,x", json={"v": "patched"}).json() == {"a": 1, "b": "x", "v": "patched"}
    assert composite.delete("/t/1,x").status_code == 204
    assert composite.get("/t").json()["t"] == [{"a": 2, "b": "y", "v": "put"}]


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ("/t/1", "/path/id"),  # too few parts
        ("/t/1,x,y", "/path/id"),  # too many parts
        ("/t/abc,x", "/path/id/a"),  # a is an integer
        ("/t/99999999999999999999,x", "/path/id/a"),  # beyond int64
    ],
)
def test_composite_key_with_bad_parts_is_400(composite: TestClient, path: str, pointer: str) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"v": "x"} if method in ("PUT", "PATCH") else None
        assert_problem(composite.request(method, path, json=body), 400, pointer)
    assert composite.get("/t").json()["t"] == []


# -- list and pagination --------------------------------------------------------------------------------


def links(body: dict[str, Any]) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body["links"]}


def test_empty_list(people: TestClient) -> None:
    body = people.get("/t").json()
    assert body["t"] == []
    assert links(body) == {"self": "/t?offset=0&limit=100", "first": "/t?offset=0&limit=100"}


def test_list_is_ordered_by_primary_key(people: TestClient) -> None:
    for key in (5, 2, 9, 1):
        assert people.put(f"/t/{key}", json={"email": f"{key}@example.org"}).status_code == 201
    assert [row["person_id"] for row in people.get("/t").json()["t"]] == [1, 2, 5, 9]


def test_default_page_is_100_rows_with_links(people: TestClient) -> None:
    for number in range(101):
        add(people, name=f"n{number}")
    first = people.get("/t").json()
    assert [row["person_id"] for row in first["t"]] == list(range(1, 101))
    found = links(first)
    assert found["self"] == "/t?offset=0&limit=100" and found["first"] == "/t?offset=0&limit=100"
    assert found["next"].startswith("/t?limit=100&cursor=")  # keyset: page N costs what page 1 does
    second = people.get(found["next"]).json()
    assert [row["person_id"] for row in second["t"]] == [101]
    assert links(second)["self"] == found["next"] and "next" not in links(second)
    assert links(people.get("/t?offset=100&limit=100").json())["prev"] == "/t?offset=0&limit=100"
    assert len(people.get("/t?limit=1000").json()["t"]) == 101


def test_following_next_links_visits_every_row_once(people: TestClient) -> None:
    for number in range(7):
        add(people, name=f"n{number}")
    seen: list[int] = []
    href: str | None = "/t?limit=3"
    while href:
        body = people.get(href).json()
        seen += [row["person_id"] for row in body["t"]]
        href = links(body).get("next")
    assert seen == list(range(1, 8))
    middle = people.get("/t?offset=3&limit=3").json()
    assert links(middle)["prev"] == "/t?offset=0&limit=3"
    assert [row["person_id"] for row in people.get(links(middle)["next"]).json()["t"]] == [7]


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("limit=0", "/query/limit"),
        ("limit=-1", "/query/limit"),
        ("limit=1001", "/query/limit"),  # the maximum is 1000
        ("limit=abc", "/query/limit"),
        ("limit=1.5", "/query/limit"),
        ("offset=-1", "/query/offset"),
        ("offset=abc", "/query/offset"),
        (f"offset={10**20}", "/query/offset"),  # beyond int64
        ("colour=red", "/query/colour"),  # unknown query parameter
    ],
)
def test_bad_page_parameters_are_400(people: TestClient, query: str, pointer: str) -> None:
    for path in ("/t", "/t/query"):
        assert_problem(people.get(f"{path}?{query}"), 400, pointer)


def test_bad_page_parameters_of_a_post_query_are_400(people: TestClient) -> None:
    assert_problem(people.post("/t/query?limit=0", json={}), 400, "/query/limit")


# -- item routes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/t/7", 404),  # absent
        ("/t/0", 404),
        ("/t/-1", 404),
        ("/t/99999999999999999999", 400),  # beyond int64: a bad request, not a server error
        ("/t/-99999999999999999999", 400),
        ("/t/9223372036854775807", 404),  # the largest int64 is a valid key
    ],
)
def test_absent_or_impossible_keys(people: TestClient, path: str, status: int) -> None:
    add(people, name="Ann")
    for method in ("GET", "PATCH", "DELETE"):
        body = {"name": "x"} if method == "PATCH" else None
        problem = assert_problem(people.request(method, path, json=body), status)
        assert problem["title"] and problem["detail"]
    assert [row["name"] for row in people.get("/t").json()["t"]] == ["Ann"]


def test_post_returns_location_of_the_new_row(people: TestClient) -> None:
    created = people.post("/t", json={"name": "Ann", "age": 30, "email": "ann@example.org"})
    assert created.status_code == 201
    assert people.get(created.headers["location"]).json() == {
        "person_id": 1, "name": "Ann", "age": 30, "email": "ann@example.org"}  # fmt: skip


def test_put_replaces_the_whole_row(people: TestClient) -> None:
    add(people, name="Ann", age=30)
    replaced = people.put("/t/1", json={"email": "new@example.org"})
    assert replaced.status_code == 200, replaced.text
    expected = {"person_id": 1, "name": None, "age": None, "email": "new@example.org"}
    assert replaced.json() == expected  # omitted optional fields become null
    assert people.get("/t/1").json() == expected


def test_put_creates_the_row_at_an_absent_key(people: TestClient) -> None:
    created = people.put("/t/42", json={"name": "Ann", "email": "ann@example.org"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/t/42"
    assert people.get("/t/42").json()["name"] == "Ann"
    # the sequence is not confused by a key chosen by the client
    assert people.put("/t/42", json={"name": "Bob", "email": "b@example.org"}).status_code == 200


def test_put_body_key_must_match_the_path(people: TestClient) -> None:
    add(people, name="Ann")
    # a valid body that conflicts with its target: 409 (RFC 9110), as schemathesis' acceptance check expects
    assert_problem(people.put("/t/1", json={"person_id": 2, "email": "x@example.org"}), 409, "/person_id")
    assert_problem(people.patch("/t/1", json={"person_id": 2}), 409, "/person_id")
    same = people.put("/t/1", json={"person_id": 1, "name": "Same", "email": "x@example.org"})
    assert same.status_code == 200, same.text
    assert people.get("/t/2").status_code == 404


def test_put_needs_required_fields(people: TestClient) -> None:
    add(people, name="Ann")
    assert_problem(people.put("/t/1", json={"name": "No email"}), 400, "/email")
    assert people.get("/t/1").json()["name"] == "Ann"


def test_patch_changes_only_the_given_fields(people: TestClient) -> None:
    add(people, name="Ann", age=30)
    patched = people.patch("/t/1", json={"age": 31})
    assert patched.status_code == 200, patched.text
    assert patched.json() == {"person_id": 1, "name": "Ann", "age": 31, "email": "x@example.org"}
    assert people.patch("/t/1", json={"name": None}).json()["name"] is None
    assert people.patch("/t/1", json={}).json() == people.get("/t/1").json()


def test_patch_refuses_bad_changes(people: TestClient) -> None:
    add(people, name="Ann")
    assert_problem(people.patch("/t/1", json={"email": None}), 400, "/email")  # required
    assert_problem(people.patch("/t/1", json={"person_id": 9}), 409, "/person_id")  # re-keying
    assert_problem(people.patch("/t/1", json={"colour": "red"}), 400, "/colour")
    assert people.get("/t/1").json()["email"] == "x@example.org"


def test_delete_then_404(people: TestClient) -> None:
    add(people, name="Ann")
    add(people, name="Bob")
    deleted = people.delete("/t/1")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(people.get("/t/1"), 404)
    assert_problem(people.delete("/t/1"), 404)
    assert [row["name"] for row in people.get("/t").json()["t"]] == ["Bob"]


# -- exact-match queries --------------------------------------------------------------------------------


@pytest.fixture
def crowd(people: TestClient) -> TestClient:
    for name, age in [("Ann", 30), ("Bob", 30), ("Ann", 40), ("Cy", None), ("Ann", 30)]:
        add(people, name=name, age=age)
    return people


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"name": "Ann"}, [1, 3, 5]),
        ({"name": "Ann", "age": 30}, [1, 5]),  # AND of the given fields
        ({"age": 30}, [1, 2, 5]),
        ({"age": None}, [4]),  # null matches rows without a value
        ({"name": "Nobody"}, []),  # an empty result is not an error
        ({}, [1, 2, 3, 4, 5]),
    ],
)
def test_post_query(crowd: TestClient, filters: dict[str, Any], expected: list[int]) -> None:
    response = crowd.post("/t/query", json=filters)
    assert response.status_code == 200, response.text
    assert [row["person_id"] for row in response.json()["t"]] == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=Ann", [1, 3, 5]),
        ("name=Ann&age=30", [1, 5]),
        ("age=40", [3]),
        ("name=Nobody", []),
        ("", [1, 2, 3, 4, 5]),
    ],
)
def test_get_query(crowd: TestClient, query: str, expected: list[int]) -> None:
    response = crowd.get(f"/t/query?{query}")
    assert response.status_code == 200, response.text
    assert [row["person_id"] for row in response.json()["t"]] == expected


def test_query_is_paginated(crowd: TestClient) -> None:
    page = crowd.post("/t/query?limit=2", json={"name": "Ann"}).json()
    assert [row["person_id"] for row in page["t"]] == [1, 3]
    assert "next" in links(page)
    rest = crowd.post("/t/query?offset=2&limit=2", json={"name": "Ann"}).json()
    assert [row["person_id"] for row in rest["t"]] == [5]
    assert "next" not in links(rest)


def test_get_query_links_keep_the_filter(crowd: TestClient) -> None:
    seen: list[int] = []
    href: str | None = "/t/query?name=Ann&limit=1"
    while href and len(seen) < 10:
        body = crowd.get(href).json()
        seen += [row["person_id"] for row in body["t"]]
        href = links(body).get("next")
    assert seen == [1, 3, 5]


def test_query_with_an_unknown_field_is_400(crowd: TestClient) -> None:
    assert_problem(crowd.post("/t/query", json={"colour": "red"}), 400, "/colour")
    assert_problem(crowd.get("/t/query?colour=red"), 400, "/query/colour")


def test_query_with_a_wrongly_typed_value_is_400(crowd: TestClient) -> None:
    assert_problem(crowd.post("/t/query", json={"age": "thirty"}), 400, "/age")
    assert_problem(crowd.get("/t/query?age=thirty"), 400, "/query/age")


@pytest.mark.parametrize(
    "name",
    [
        "first-name",  # not a Python identifier
        "first name",
        "class",  # a Python keyword
        "Name",  # mixed case
    ],
)
def test_get_query_filters_on_any_field_name(client: TestClient, name: str) -> None:
    body = one_table([field("id", "integer"), field(name)], "id")
    assert client.post("/generator", json=body).status_code == 201
    for value in ("Ann", "Bob", "Ann"):
        assert client.post("/t", json={name: value}).status_code == 201
    response = client.get("/t/query", params={name: "Ann"})
    assert response.status_code == 200, response.text
    assert [row["id"] for row in response.json()["t"]] == [1, 3]


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("integer", 7),
        ("string", "k-1"),
        ("number", 2.5),
        ("boolean", True),
        ("date", "2020-02-29"),
        ("time", "10:11:12"),
        ("datetime", "2021-03-04T05:06:07.123456+05:30"),
        ("year", 2020),
        ("yearmonth", "2020-07"),
        ("duration", "P1D"),
    ],
)
def test_key_of_any_scalar_type_can_be_read_updated_and_deleted(client: TestClient, type_: str, value: Any) -> None:
    body = one_table([field("k", type_), field("v")], "k")
    assert client.post("/generator", json=body).status_code == 201
    created = client.post("/t", json={"k": value, "v": "first"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == value
    location = created.headers["location"]
    assert client.get(location).json() == {"k": value, "v": "first"}
    assert client.patch(location, json={"v": "second"}).json() == {"k": value, "v": "second"}
    assert client.put(location, json={"v": "third"}).json() == {"k": value, "v": "third"}
    assert client.post("/t/query", json={"k": value}).json()["t"] == [{"k": value, "v": "third"}]
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404


# -- foreign keys ---------------------------------------------------------------------------------------


@pytest.fixture
def related(client: TestClient) -> TestClient:
    """`parent` and `child`, child.parent_id -> parent.id, every route served."""
    parent = {"name": "parent", "tableSchema": {"fields": [field("id", "integer"), field("name")], "primaryKey": "id"}}
    child = {"name": "child", "tableSchema": {
        "fields": [field("id", "integer"), field("parent_id", "integer")], "primaryKey": "id",
        "foreignKeys": [{"fields": "parent_id", "reference": {"resource": "parent", "fields": "id"}}]}}  # fmt: skip
    api = {"apiSpec": {"paths": crud_paths("parent") | crud_paths("child")}}
    body = {"data_resource_schema": {"data": {"dataDictionary": [parent, child]}, "api": api}}
    assert client.post("/generator", json=body).status_code == 201
    assert client.post("/parent", json={"name": "p"}).status_code == 201
    return client


def test_foreign_key_accepts_existing_rows_and_null(related: TestClient) -> None:
    assert related.post("/child", json={"parent_id": 1}).status_code == 201
    assert related.post("/child", json={"parent_id": None}).status_code == 201
    assert [row["parent_id"] for row in related.get("/child").json()["child"]] == [1, None]


def test_foreign_key_to_a_missing_row_is_409_naming_the_field(related: TestClient) -> None:
    response = related.post("/child", json={"parent_id": 99})
    body = assert_problem(response, 409)
    assert "parent_id" in body["detail"]
    assert related.get("/child").json()["child"] == []
    created = related.post("/child", json={"parent_id": 1})
    assert created.status_code == 201
    assert_problem(related.patch(created.headers["location"], json={"parent_id": 99}), 409)
    assert related.get(created.headers["location"]).json()["parent_id"] == 1


def test_deleting_a_referenced_row_is_409_and_keeps_it(related: TestClient) -> None:
    assert related.post("/child", json={"parent_id": 1}).status_code == 201
    assert_problem(related.delete("/parent/1"), 409)
    assert related.get("/parent/1").status_code == 200
    assert related.delete("/child/1").status_code == 204
    assert related.delete("/parent/1").status_code == 204
