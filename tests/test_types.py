"""Values and constraints: every Table Schema type round-trips with no loss; bad values are 400s naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

Payload = Callable[[str], dict[str, Any]]
PROBLEM_JSON = "application/problem+json"

FULL_ROW: dict[str, Any] = {
    "name": "Ann",
    "string": "text with ünïcode and \"quotes\"",
    "number": 12.5,
    "integer": 7,
    "boolean": True,
    "object": {"a": [1, {"b": None}], "c": "d"},
    "array": [1, "two", None, {"three": 3}],
    "date": "2020-02-29",
    "time": "10:11:12.123456",
    "datetime": "2021-03-04T05:06:07.123456+05:30",
    "year": 2020,
    "yearmonth": "2020-07",
    "duration": "P1Y2M3DT4H5M6S",
    "geopoint": "90, 45",
    "geojson": {"type": "Point", "coordinates": [102.0, 0.5]},
    "any": {"anything": ["goes"]},
}


@pytest.fixture
def typed(client: TestClient, load_payload: Payload) -> TestClient:
    """A service serving all_types.json: table `people` with one field per type (and `name`, `id`)."""
    response = client.post("/generator", json=load_payload("all_types.json"))
    assert response.status_code == 201, response.text
    return client


def create(client: TestClient, row: dict[str, Any]) -> dict[str, Any]:
    """POST a row, then GET it back through its Location."""
    created = client.post("/people", json=row)
    assert created.status_code == 201, created.text
    fetched = client.get(created.headers["location"])
    assert fetched.status_code == 200, fetched.text
    return fetched.json()


def create_raw(client: TestClient, text: str) -> str:
    """POST a raw JSON body, then GET the row back as raw text (so numbers keep their digits)."""
    created = client.post("/people", content=text.encode(), headers={"content-type": "application/json"})
    assert created.status_code == 201, created.text
    return client.get(created.headers["location"]).text


def assert_problem(response: Any, status: int, pointer: str) -> None:
    """A problem whose errors point at `pointer` (or inside it, e.g. /geojson/type for /geojson)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    pointers = [e["pointer"] for e in response.json()["errors"]]
    assert any(p == pointer or p.startswith(f"{pointer}/") for p in pointers), response.text


# -- round trips ----------------------------------------------------------------------------------------


def test_every_type_round_trips(typed: TestClient) -> None:
    row = create(typed, FULL_ROW)
    assert row == {"id": 1, **FULL_ROW}


def test_null_stays_null_for_every_type(typed: TestClient) -> None:
    row = create(typed, dict.fromkeys(FULL_ROW))
    assert row == {"id": 1, **dict.fromkeys(FULL_ROW)}
    listed = typed.get("/people").json()["people"][0]
    assert all(value is None for name, value in listed.items() if name != "id")


def test_omitted_fields_are_null(typed: TestClient) -> None:
    row = create(typed, {"name": "only a name"})
    assert row == {"id": 1, **dict.fromkeys(FULL_ROW), "name": "only a name"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("string", ""),  # empty is not null
        ("string", "   padded   "),
        ("string", "line\nbreak\ttab"),
        ("integer", 0),
        ("integer", 2**63 - 1),  # the int64 range
        ("integer", -(2**63)),
        ("boolean", False),  # false is not null
        ("object", {}),
        ("array", []),
        ("date", "0001-01-01"),
        ("date", "9999-12-31"),
        ("time", "00:00:00"),
        ("time", "23:59:59.999999"),
        ("year", 0),
        ("year", 1999),
        ("yearmonth", "1999-12"),
        ("duration", "PT0.5S"),
        ("duration", "P3W"),
        ("geopoint", "-180, -90"),
        ("geopoint", "12.5,-45.25"),
        ("geojson", {"type": "FeatureCollection", "features": []}),
        ("any", 0),  # falsy values of `any` keep their value and type
        ("any", False),
        ("any", ""),
        ("any", [1, "a"]),
        ("any", "text"),
        ("any", 1.5),
    ],
)
def test_single_value_round_trips(typed: TestClient, name: str, value: Any) -> None:
    row = create(typed, {name: value})
    assert row[name] == value
    assert type(row[name]) is type(value)


@pytest.mark.parametrize(
    "value",
    [
        "2021-03-04T05:06:07.123456+05:30",
        "2021-03-04T05:06:07.000001-08:00",
        "1999-12-31T23:59:59.999999+14:00",
        "2021-03-04T05:06:07.123456+00:00",
    ],
)
def test_datetime_comes_back_identical(typed: TestClient, value: str) -> None:
    assert create(typed, {"datetime": value})["datetime"] == value


@pytest.mark.parametrize(
    "value",
    [
        "2021-03-04T05:06:07Z",  # UTC as Z
        "2021-03-04T05:06:07+05:30",  # no fraction
        "2021-03-04T05:06:07.5-03:00",  # a short fraction
    ],
)
def test_datetime_keeps_instant_and_offset(typed: TestClient, value: str) -> None:
    back = datetime.fromisoformat(create(typed, {"datetime": value})["datetime"])
    sent = datetime.fromisoformat(value)
    assert back == sent
    assert back.utcoffset() == sent.utcoffset()


def test_datetime_is_kept_in_list_and_query(typed: TestClient) -> None:
    value = "2021-03-04T05:06:07.123456+05:30"
    create(typed, {"datetime": value, "name": "a"})
    create(typed, {"datetime": "2021-03-04T05:06:07.123456+05:00", "name": "b"})
    assert typed.get("/people").json()["people"][0]["datetime"] == value
    found = typed.post("/people/query", json={"datetime": value}).json()["people"]
    assert [row["name"] for row in found] == ["a"]


@pytest.mark.parametrize(
    "text",
    ["12.5", "0.1", "1e-7", "1E-7", "-3", "0", "3.14159", "2.5e10", "-0.000123", "1.7976931348623157e308"],
)
def test_number_keeps_its_value(typed: TestClient, text: str) -> None:
    back = json.loads(create_raw(typed, f'{{"number": {text}}}'), parse_float=Decimal)["number"]
    assert Decimal(back) == Decimal(text)


def test_number_keeps_every_digit_on_postgresql(typed: TestClient, database_url: str) -> None:
    text = create_raw(typed, '{"number": 123456789.123456789}')
    number = json.loads(text, parse_float=Decimal)["number"]
    if database_url.startswith("postgresql"):
        assert '"number":123456789.123456789' in text.replace(" ", "")
        assert number == Decimal("123456789.123456789")
    else:  # SQLite has no exact decimal storage: the nearest double comes back
        assert float(number) == 123456789.123456789


def test_number_beyond_what_the_database_keeps_is_refused(typed: TestClient) -> None:
    """1e400 has no double: the README promises numbers beyond ±1.8e308 are refused on both databases, never
    stored as infinity."""
    created = typed.post("/people", content=b'{"number": 1e400}', headers={"content-type": "application/json"})
    assert created.status_code == 400, created.text
    assert "/number" in [e["pointer"] for e in created.json()["errors"]]
    assert typed.get("/people").json()["people"] == []


def test_put_and_patch_round_trip_every_type(typed: TestClient) -> None:
    create(typed, {"name": "x"})
    replaced = typed.put("/people/1", json=FULL_ROW)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"id": 1, **FULL_ROW}
    patched = typed.patch("/people/1", json={"datetime": "2000-01-01T00:00:00.000001-01:00", "number": 0.1})
    assert patched.json()["datetime"] == "2000-01-01T00:00:00.000001-01:00"
    assert patched.json()["number"] == 0.1
    expected = {"id": 1, **FULL_ROW, "number": 0.1, "datetime": "2000-01-01T00:00:00.000001-01:00"}
    assert typed.get("/people/1").json() == expected


@pytest.mark.parametrize(
    ("name", "value", "other", "text"),
    [
        ("string", "Ann", "Bob", "Ann"),
        ("integer", 7, 8, "7"),
        ("number", 12.5, 12.25, "12.5"),
        ("boolean", False, True, "false"),
        ("date", "2020-02-29", "2020-03-01", "2020-02-29"),
        ("time", "10:11:12.123456", "10:11:12", "10:11:12.123456"),
        ("datetime", "2021-03-04T05:06:07.123456+05:30", "2021-03-04T05:06:07.123456+05:00",
         "2021-03-04T05:06:07.123456+05:30"),
        ("year", 2020, 2021, "2020"),
        ("yearmonth", "2020-07", "2020-08", "2020-07"),
        ("duration", "P1D", "P2D", "P1D"),
    ],
)
def test_exact_match_query_on_each_scalar_type(typed: TestClient, name: str, value: Any, other: Any, text: str) -> None:
    create(typed, {"name": "match", name: value})
    create(typed, {"name": "other", name: other})
    posted = typed.post("/people/query", json={name: value})
    assert posted.status_code == 200, posted.text
    assert [row["name"] for row in posted.json()["people"]] == ["match"]
    got = typed.get("/people/query", params={name: text})
    assert got.status_code == 200, got.text
    assert [row["name"] for row in got.json()["people"]] == ["match"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("date", "2020-02-30"),  # no such day
        ("date", "2021-02-29"),  # not a leap year
        ("date", "nope"),
        ("date", "2020-1-1"),
        ("date", 20200101),
        ("datetime", "nope"),
        ("datetime", "2021-02-30T00:00:00Z"),
        ("datetime", "2021-03-04"),  # a date is not a date-time
        ("time", "25:00:00"),
        ("time", "10:61:00"),
        ("time", "noon"),
        ("yearmonth", "2020-13"),
        ("yearmonth", "2020-00"),
        ("yearmonth", "2020"),
        ("duration", "P1X"),
        ("duration", "P"),
        ("duration", "1 day"),
        ("geopoint", "500, 45"),  # longitude out of range
        ("geopoint", "90, 100"),  # latitude out of range
        ("geopoint", "nope"),
        ("geopoint", "90"),
        ("geojson", {"coordinates": [1, 2]}),  # no type
        ("geojson", "Point"),
        ("year", "2020"),
        ("year", 10000),
        ("integer", 1.5),
        ("integer", "1"),
        ("integer", 2**63),  # beyond int64
        ("boolean", "true"),
        ("boolean", 1),
        ("object", [1]),
        ("array", {"a": 1}),
        ("number", "12.5"),
        ("string", 12),
    ],
)
def test_bad_value_is_400_naming_the_field(typed: TestClient, name: str, value: Any) -> None:
    assert_problem(typed.post("/people", json={"name": "x", name: value}), 400, f"/{name}")
    create(typed, {"name": "ok"})
    assert_problem(typed.patch("/people/1", json={name: value}), 400, f"/{name}")
    assert_problem(typed.put("/people/1", json={name: value}), 400, f"/{name}")
    assert typed.get("/people").json()["people"] == [{"id": 1, **dict.fromkeys(FULL_ROW), "name": "ok"}]


@pytest.fixture
def geopoints(client: TestClient) -> TestClient:
    """Table `g` with a geopoint in each format of Table Schema."""
    fields = [{"name": "id", "type": "integer"}, {"name": "text", "type": "geopoint"},
              {"name": "pair", "type": "geopoint", "format": "array"},
              {"name": "point", "type": "geopoint", "format": "object"}]  # fmt: skip
    entry = {"name": "g", "tableSchema": {"fields": fields, "primaryKey": "id"}}
    paths = {"/g": {"post": {}}, "/g/{id}": {"get": {}}}
    body = {"data_resource_schema": {"data": {"dataDictionary": [entry]}, "api": {"apiSpec": {"paths": paths}}}}
    assert client.post("/generator", json=body).status_code == 201
    return client


def test_geopoint_formats_round_trip(geopoints: TestClient) -> None:
    row = {"text": "-73.98, 40.75", "pair": [-73.98, 40.75], "point": {"lon": -73.98, "lat": 40.75}}
    created = geopoints.post("/g", json=row)
    assert created.status_code == 201, created.text
    assert geopoints.get(created.headers["location"]).json() == {"id": 1, **row}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pair", [500, 45]),  # longitude out of range
        ("pair", [45, -91]),  # latitude out of range
        ("pair", [1, 2, 3]),
        ("pair", ["a", "b"]),
        ("point", {"lon": 90, "lat": 100}),
        ("point", {"lon": 181, "lat": 0}),
        ("point", {"lon": 1}),
        ("point", {"x": 1, "y": 2}),
        ("text", [1, 2]),  # the default format is a string
    ],
)
def test_bad_geopoint_is_400(geopoints: TestClient, name: str, value: Any) -> None:
    assert_problem(geopoints.post("/g", json={name: value}), 400, f"/{name}")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_400(typed: TestClient, text: str) -> None:
    response = typed.post("/people", content=f'{{"number": {text}}}'.encode(),
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


# -- constraints ----------------------------------------------------------------------------------------


def constrained_payload() -> dict[str, Any]:
    fields = [
        {"name": "id", "type": "integer"},
        {"name": "name", "type": "string", "constraints": {"required": True}},
        {"name": "email", "type": "string", "constraints": {"unique": True}},
        {"name": "colour", "type": "string", "constraints": {"enum": ["red", "green"]}},
        {"name": "code", "type": "string", "constraints": {"minLength": 2, "maxLength": 4}},
        {"name": "score", "type": "integer", "constraints": {"minimum": 0, "maximum": 10}},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0.5, "maximum": 99.5}},
        {"name": "sku", "type": "string", "constraints": {"pattern": "[A-Z]{3}-[0-9]+"}},
        {"name": "born", "type": "date", "constraints": {"minimum": "2000-01-01", "maximum": "2020-12-31"}},
        {"name": "level", "type": "integer", "constraints": {"enum": [1, 2, 3]}},
    ]
    paths = {"/c": {"post": {}}, "/c/{id}": {"get": {}, "put": {}, "patch": {}}}
    entry = {"name": "c", "tableSchema": {"fields": fields, "primaryKey": "id"}}
    return {"data_resource_schema": {"data": {"dataDictionary": [entry]}, "api": {"apiSpec": {"paths": paths}}}}


@pytest.fixture
def constrained(client: TestClient) -> TestClient:
    response = client.post("/generator", json=constrained_payload())
    assert response.status_code == 201, response.text
    return client


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"name": None}, "/name"),  # required: null is refused
        ({"colour": "blue"}, "/colour"),  # enum
        ({"colour": "Red"}, "/colour"),
        ({"level": 4}, "/level"),
        ({"code": "a"}, "/code"),  # minLength
        ({"code": "abcde"}, "/code"),  # maxLength
        ({"score": -1}, "/score"),  # minimum
        ({"score": 11}, "/score"),  # maximum
        ({"amount": 0.49}, "/amount"),
        ({"amount": 99.51}, "/amount"),
        ({"sku": "abc-1"}, "/sku"),  # pattern
        ({"sku": "xxABC-1yy"}, "/sku"),  # Table Schema patterns must match the whole value
        ({"born": "1999-12-31"}, "/born"),  # date minimum
        ({"born": "2021-01-01"}, "/born"),  # date maximum
        ({"nickname": "x"}, "/nickname"),  # unknown field
    ],
)
def test_constraint_violation_is_400_naming_the_field(
    constrained: TestClient, changes: dict[str, Any], pointer: str
) -> None:
    assert_problem(constrained.post("/c", json={"name": "n", **changes}), 400, pointer)
    assert constrained.post("/c", json={"name": "n"}).status_code == 201
    assert_problem(constrained.patch("/c/1", json=changes), 400, pointer)
    assert_problem(constrained.put("/c/1", json={"name": "n", **changes}), 400, pointer)
    assert constrained.get("/c/1").json()["name"] == "n"
    assert constrained.get("/c/2").status_code == 404


def test_missing_required_field_is_400(constrained: TestClient) -> None:
    assert_problem(constrained.post("/c", json={"colour": "red"}), 400, "/name")
    assert_problem(constrained.put("/c/1", json={"colour": "red"}), 400, "/name")


@pytest.mark.parametrize(
    "changes",
    [
        {"colour": "green", "level": 1},
        {"colour": None, "level": None},  # optional enum fields may be null
        {"code": "ab", "score": 0, "amount": 0.5, "born": "2000-01-01"},  # inclusive lower bounds
        {"code": "abcd", "score": 10, "amount": 99.5, "born": "2020-12-31"},  # inclusive upper bounds
        {"sku": "ABC-123"},
    ],
)
def test_values_within_constraints_are_accepted(constrained: TestClient, changes: dict[str, Any]) -> None:
    created = constrained.post("/c", json={"name": "n", **changes})
    assert created.status_code == 201, created.text
    row = constrained.get(created.headers["location"]).json()
    assert {k: row[k] for k in changes} == changes


def test_every_violation_is_reported_at_once(constrained: TestClient) -> None:
    response = constrained.post("/c", json={"colour": "blue", "score": 11, "code": "a", "extra": 1})
    assert response.status_code == 400, response.text
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert {"/name", "/colour", "/score", "/code", "/extra"} <= pointers


def test_unique_field_conflict_is_409_naming_the_field(constrained: TestClient) -> None:
    assert constrained.post("/c", json={"name": "a", "email": "a@example.org"}).status_code == 201
    second = constrained.post("/c", json={"name": "b", "email": "a@example.org"})
    assert second.status_code == 409, second.text
    assert second.headers["content-type"].startswith(PROBLEM_JSON)
    assert "email" in second.json()["detail"]
    assert constrained.get("/c/2").status_code == 404
    # null is not a value: several rows may leave a unique field empty
    assert constrained.post("/c", json={"name": "c"}).status_code == 201
    assert constrained.post("/c", json={"name": "d", "email": None}).status_code == 201
    # changing a row to a taken value is a conflict too
    assert constrained.patch("/c/3", json={"email": "a@example.org"}).status_code == 409
    assert constrained.put("/c/3", json={"name": "c", "email": "a@example.org"}).status_code == 409
    assert constrained.get("/c/3").json()["email"] is None
