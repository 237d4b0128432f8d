"""Payloads the databases could not hold: reserved table names, too many columns, bounds no value satisfies,
patterns RE2 cannot match in linear time, bounds the served converters could not read.

Each is a 400 problem+json whose `errors` point at the exact place, on SQLite and PostgreSQL alike (a payload
must be portable), and nothing is created: the unit cases call `parse_payload`, the HTTP cases go through
`POST /generator` on both databases."""

from __future__ import annotations

import time as clock
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from starlette.testclient import TestClient

from generator.errors import InvalidPayload
from generator.payload import parse_payload
from generator.payload.parse import INFORMATION_SCHEMA_NAMES, MAX_COLUMNS
from generator.pointers import child, pointer

DICTIONARY = pointer(["data_resource_schema", "data", "dataDictionary"])
PAIRS = pointer(["data_resource_schema", "data", "relationships", "manyToMany"])
ID = {"name": "id", "type": "integer"}


def at(*tokens: Any) -> str:
    """A pointer into the first data dictionary entry's table schema."""
    return DICTIONARY + pointer([0, "tableSchema", *tokens])


def table(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "tableSchema": {"fields": [ID, *fields] if fields else [ID, {"name": "name"}],
                                          "primaryKey": "id"}}  # fmt: skip


def payload(*tables: dict[str, Any], pairs: list[list[str]] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"dataDictionary": list(tables)}
    if pairs is not None:
        data["relationships"] = {"manyToMany": pairs}
    paths = {f"/{t['name']}": {"get": {}} for t in tables}
    return {"data_resource_schema": {"data": data, "api": {"apiSpec": {"paths": paths}}}}


def constrained(type_: str, **constraints: Any) -> dict[str, Any]:
    return payload(table("t", {"name": "v", "type": type_, "constraints": constraints}))


def wide(name: str, columns: int) -> dict[str, Any]:
    return table(name, *({"name": f"f{i}"} for i in range(columns - 1)))


def issues(body: Any) -> dict[str, str]:
    """pointer -> message of every issue; fails if the payload is accepted."""
    with pytest.raises(InvalidPayload) as raised:
        parse_payload(body)
    return {issue.pointer: issue.message for issue in raised.value.issues}


def refused(client: TestClient, database_url: str, body: dict[str, Any], where: str) -> str:
    """POST the payload: a 400 with an issue at `where` (its message is returned), and nothing created."""
    response = client.post("/generator", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    found = {e["pointer"]: e["message"] for e in response.json()["errors"]}
    assert where in found, found
    assert client.get("/openapi.json").json()["paths"] == {}
    engine = create_engine(database_url)
    try:
        assert {t for t in inspect(engine).get_table_names() if not t.startswith("drg_")} == set()
    finally:
        engine.dispose()
    assert client.post("/generator", json=payload(table("fine"))).status_code == 201  # the service is intact
    return found[where]


# -- 1. table names a database reserves -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["sqlite_master", "sqlite_x", "SQLite_Stat1", "pg_class", "pg_x", "PG_Tables",
                                  "tables", "columns", "schemata", "views", "routines", "_pg_user_mappings"])
def test_table_names_a_database_reserves_are_refused(name: str) -> None:
    found = issues(payload(table("ok"), table(name)))
    assert "reserved" in found[f"{DICTIONARY}/1/name"]
    assert name.lower() in found[f"{DICTIONARY}/1/name"]


def test_the_information_schema_list_holds_the_views_that_matter() -> None:
    assert {"tables", "columns", "schemata", "views", "routines", "table_constraints"} <= INFORMATION_SCHEMA_NAMES
    assert all(name == name.lower() for name in INFORMATION_SCHEMA_NAMES)


@pytest.mark.parametrize("name", ["sqlite", "pg", "pgx", "my_tables", "table", "view", "column"])
def test_names_near_the_reserved_ones_are_accepted(name: str) -> None:
    assert [r.name for r in parse_payload(payload(table(name))).resources] == [name]


@pytest.mark.parametrize(("left", "right"), [("sqlite", "master"), ("pg", "class"), ("user", "mappings"),
                                             ("drg", "generations")])  # fmt: skip
def test_association_tables_must_not_take_reserved_names(left: str, right: str) -> None:
    found = issues(payload(table(left), table(right), pairs=[[left, right]]))
    assert f"{left}_{right}" in found[child(PAIRS, 0)]


def test_two_pairs_must_not_share_an_association_table() -> None:
    body = payload(table("a_b"), table("c"), table("a"), table("b_c"), pairs=[["a_b", "c"], ["a", "b_c"]])
    found = issues(body)
    assert set(found) == {child(PAIRS, 1)} and "a_b_c" in found[child(PAIRS, 1)]


@pytest.mark.parametrize("name", ["sqlite_sequence", "pg_class", "tables"])
def test_reserved_table_name_is_a_400_on_both_databases(client: TestClient, database_url: str, name: str) -> None:
    refused(client, database_url, payload(table(name)), f"{DICTIONARY}/0/name")


def test_reserved_association_table_is_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    body = payload(table("sqlite"), table("stat1"), pairs=[["sqlite", "stat1"]])
    assert "reserved" in refused(client, database_url, body, child(PAIRS, 0))


# -- 2. column count -------------------------------------------------------------------------------------


def test_a_table_of_exactly_the_limit_is_accepted() -> None:
    generation = parse_payload(payload(wide("t", MAX_COLUMNS)))
    assert len(generation.resources[0].fields) == MAX_COLUMNS == 1600


@pytest.mark.parametrize("columns", [MAX_COLUMNS + 1, 1700, 10_000])
def test_too_many_columns_names_the_table_the_count_and_the_limit(columns: int) -> None:
    found = issues(payload(wide("wide", columns)))
    message = found[at("fields")]
    assert "'wide'" in message and f"{columns:,}" in message and "1,600" in message


def test_ten_thousand_fields_are_refused_quickly_and_other_problems_still_reported() -> None:
    broken = {"name": "other", "tableSchema": {"fields": [ID], "primaryKey": "nope"}}
    body = payload(wide("wide", 10_000), broken, table("pg_x"))
    parse_payload(payload(table("warm")))  # imports and compiled validators are not what is measured
    started = clock.perf_counter()
    found = issues(body)
    assert clock.perf_counter() - started < 0.5
    assert {at("fields"), f"{DICTIONARY}/1/tableSchema/primaryKey", f"{DICTIONARY}/2/name"} <= set(found)
    assert [p for p in found if p.startswith(f"{DICTIONARY}/0/")] == [at("fields")]  # its fields: not one by one


def test_a_wide_table_is_still_a_declared_table_for_references() -> None:
    """Its width is its one problem: keys, pairs and paths naming it are not reported as naming nothing."""
    keys = [{"fields": "wide_id", "reference": {"resource": "wide", "fields": "id"}}]
    child_table = {"name": "c", "tableSchema": {"fields": [ID, {"name": "wide_id", "type": "integer"}],
                                                "primaryKey": "id", "foreignKeys": keys}}  # fmt: skip
    found = issues(payload(wide("wide", 1700), child_table, pairs=[["wide", "c"]]))
    assert set(found) == {at("fields")}


def test_too_many_columns_is_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    started = clock.perf_counter()
    message = refused(client, database_url, payload(wide("wide", 10_000)), at("fields"))
    assert "10,000" in message and "1,600" in message
    assert clock.perf_counter() - started < 5  # with the follow-up generation; the refusal itself is milliseconds


# -- 3. constraints that cannot hold -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "low", "high"),
    [
        ("integer", 5, 1),
        ("number", 1.5, -2),
        ("year", 2020, 1999),
        ("date", "2020-02-01", "2020-01-31"),
        ("time", "10:00:01", "10:00:00"),
        ("datetime", "2020-01-01T00:00:01Z", "2020-01-01T00:00:00Z"),
        ("datetime", "2020-01-01T01:00:00+00:00", "2020-01-01T01:30:00+01:00"),  # compared as instants
        ("yearmonth", "2020-02", "2020-01"),
    ],
)
def test_minimum_above_maximum_points_at_the_constraints(type_: str, low: Any, high: Any) -> None:
    found = issues(constrained(type_, minimum=low, maximum=high))
    message = found[at("fields", 1, "constraints")]
    assert "'v'" in message and "minimum" in message and "maximum" in message


@pytest.mark.parametrize(
    ("type_", "low", "high"),
    [
        ("integer", 1, 1),
        ("number", -2, 1.5),
        ("date", "2020-01-31", "2020-02-01"),
        ("time", "09:00", "10:00:00"),
        ("datetime", "2020-01-01T01:30:00+01:00", "2020-01-01T01:00:00+00:00"),  # earlier as an instant
        ("yearmonth", "2019-12", "2020-01"),
        ("date", "2020-01-09", "2020-01-10"),
    ],
)
def test_bounds_in_order_are_accepted(type_: str, low: Any, high: Any) -> None:
    spec = parse_payload(constrained(type_, minimum=low, maximum=high)).resources[0].field("v")
    assert (spec.minimum, spec.maximum) == (low, high)


def test_min_length_above_max_length_points_at_the_constraints() -> None:
    found = issues(constrained("string", minLength=5, maxLength=4))
    assert "minLength" in found[at("fields", 1, "constraints")]
    assert parse_payload(constrained("string", minLength=4, maxLength=4)).resources


def test_datetime_bounds_with_and_without_offset_are_refused_not_crashed() -> None:
    found = issues(constrained("datetime", minimum="2020-01-01T00:00:00", maximum="2020-01-02T00:00:00Z"))
    assert "UTC offset" in found[at("fields", 1, "constraints")]


@pytest.mark.parametrize(
    ("type_", "bound", "value"),
    [
        ("datetime", "minimum", "2020-01-01"),  # a bare date: the served converter requires a time
        ("time", "maximum", "10:00:00+01:00"),  # times are stored without an offset
        ("yearmonth", "minimum", "2020-13"),
        ("yearmonth", "maximum", 202001),
    ],
)
def test_bounds_the_served_converters_cannot_read_are_refused(type_: str, bound: str, value: Any) -> None:
    assert at("fields", 1, "constraints", bound) in issues(constrained(type_, **{bound: value}))


def test_inverted_bounds_are_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    message = refused(client, database_url, constrained("date", minimum="2021-01-01", maximum="2020-01-01"),
                      at("fields", 1, "constraints"))  # fmt: skip
    assert "'v'" in message


def test_inverted_lengths_are_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    refused(client, database_url, constrained("string", minLength=3, maxLength=2), at("fields", 1, "constraints"))


def test_datetime_bound_without_time_is_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    """It used to pass validation and crash building the API (a 500)."""
    refused(client, database_url, constrained("datetime", minimum="2020-01-01"),
            at("fields", 1, "constraints", "minimum"))  # fmt: skip


# -- 4. patterns RE2 can match ----------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)a", r"(?!a)b", r"(?<=a)b", r"(?<!a)b", r"(?P<x>a)(?P=x)",
                                     r"a++", r"\Z"])  # fmt: skip
def test_patterns_re2_cannot_compile_are_refused_saying_why(pattern: str) -> None:
    message = issues(constrained("string", pattern=pattern))[at("fields", 1, "constraints", "pattern")]
    if "RE2" in message:  # a few are not even valid for Python's re, and are reported as such
        assert "linear" in message and "backreferences" in message


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)a"])
def test_re2_message_names_re2(pattern: str) -> None:
    message = issues(constrained("string", pattern=pattern))[at("fields", 1, "constraints", "pattern")]
    assert message.startswith("RE2 cannot compile this pattern (")


def test_a_flag_the_anchored_pattern_cannot_take_is_refused() -> None:
    """`(?i)abc` is served as `^(?:(?i)abc)$`, which Python's re refuses: it crashed requests with a 500."""
    assert "whole value" in issues(constrained("string", pattern="(?i)abc"))[at("fields", 1, "constraints", "pattern")]


@pytest.mark.parametrize("pattern", [r"[A-Z]{2}\d+", r"a|b", r"(a+)+", r"(?i:abc)", r"^a.*z$"])
def test_linear_patterns_are_accepted(pattern: str) -> None:
    assert parse_payload(constrained("string", pattern=pattern)).resources[0].field("v").pattern == pattern


def test_backreference_pattern_is_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    message = refused(client, database_url, constrained("string", pattern=r"(\w+) \1"),
                      at("fields", 1, "constraints", "pattern"))  # fmt: skip
    assert "RE2" in message


# -- other payloads that crashed later layers ---------------------------------------------------------------


def test_field_names_count_in_bytes() -> None:
    """PostgreSQL truncates names to 63 bytes: two such fields became one column (a 400 only on PostgreSQL)."""
    body = payload(table("t", {"name": "é" * 40 + "a"}, {"name": "é" * 31 + "e"}))
    found = issues(body)
    assert "bytes" in found[at("fields", 1, "name")]
    assert at("fields", 2, "name") not in found  # 63 bytes fit


def test_field_name_longer_than_63_bytes_is_a_400_on_both_databases(client: TestClient, database_url: str) -> None:
    refused(client, database_url, payload(table("t", {"name": "ü" * 32})), at("fields", 1, "name"))


def test_table_title_and_description_must_be_text(client: TestClient, database_url: str) -> None:
    """A description becomes a PostgreSQL comment; an object there was a 500."""
    body = payload(table("t"))
    body["data_resource_schema"]["data"]["dataDictionary"][0]["description"] = {"an": "object"}
    refused(client, database_url, body, f"{DICTIONARY}/0/description")


def test_foreign_key_naming_a_field_twice_is_refused() -> None:
    target = {"name": "p", "tableSchema": {"fields": [{"name": "a"}, {"name": "b"}], "primaryKey": ["a", "b"]}}
    keys = [{"fields": ["x", "x"], "reference": {"resource": "p", "fields": ["a", "b"]}}]
    source = {"name": "c", "tableSchema": {"fields": [ID, {"name": "x"}], "primaryKey": "id", "foreignKeys": keys}}
    found = issues(payload(target, source))
    assert "twice" in found[f"{DICTIONARY}/1/tableSchema/foreignKeys/0/fields"]


def test_a_table_over_the_databases_column_limit_once_blind_indexes_are_added_is_a_400(
        client: TestClient, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,600 declared fields pass validation, but a searchable protected field adds its blind-index column:
    PostgreSQL refuses the 1,601st column (a program limit), which is the payload's size, so a 400 naming the
    limit, and nothing is created. SQLite allows 2,000 columns and creates the table."""
    monkeypatch.setenv("DRG_TEST_LIMIT_KEY", "A" * 43 + "=")
    body = payload(wide("wide", MAX_COLUMNS))
    table = body["data_resource_schema"]["data"]["dataDictionary"][0]
    table["tableSchema"]["fields"][1].update(protected=True, searchable=True)
    table["encryptionSchema"] = {"*": {"type": "AES_256_GCM", "key": "DRG_TEST_LIMIT_KEY"}}
    response = client.post("/generator", json=body)
    if not database_url.startswith("postgresql"):
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 400, response.text
    assert "1600" in response.json()["detail"] and "nothing was changed" in response.json()["detail"]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert "wide" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
