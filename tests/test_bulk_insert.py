"""Bulk inserts: `POST /<t>` with a JSON array, all rows or none, keys returned in the order sent.

From 100 rows on PostgreSQL the rows go in by COPY (`api/bulk_copy.py`), below that by multi-row INSERTs;
these cases run both sizes on both databases so the two paths store and answer alike."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

FIELDS = [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string", "constraints": {"required": True}},
    {"name": "email", "type": "string", "constraints": {"unique": True}},
    {"name": "balance", "type": "number"},
    {"name": "born", "type": "date"},
    {"name": "seen", "type": "datetime"},
    {"name": "tags", "type": "array"},
    {"name": "meta", "type": "object"},
    {"name": "team_id", "type": "integer"},
]


def payload() -> dict[str, Any]:
    tables = [
        {"name": "team", "tableSchema": {"fields": [{"name": "id", "type": "integer"}], "primaryKey": "id"}},
        {"name": "person", "tableSchema": {"fields": FIELDS, "primaryKey": "id", "foreignKeys": [
            {"fields": "team_id", "reference": {"resource": "team", "fields": "id"}}]}},
        {"name": "code", "tableSchema": {"fields": [{"name": "slug", "type": "string"},
                                                    {"name": "n", "type": "integer"}], "primaryKey": "slug"}},
    ]
    paths = {"/team": {"post": {}}, "/person": {"get": {}, "post": {}}, "/person/{id}": {"get": {}},
             "/code": {"get": {}, "post": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": tables}, "api": {"apiSpec": {"paths": paths}}},
            "ignore_validation": True}


@pytest.fixture
def served(make_client: Callable[..., TestClient]) -> TestClient:
    client = make_client()
    assert client.post("/generator", json=payload()).status_code == 201
    assert client.post("/team", json=[{"id": 1}, {"id": 2}]).status_code == 201
    return client


def person(i: int) -> dict[str, Any]:
    return {"name": f"P{i}", "email": f"p{i}@example.org", "balance": 12345678901234.5678 if i % 2 else i,
            "born": "1990-02-28", "seen": "2024-05-17T10:11:12.5+02:00", "tags": [i, "x"],
            "meta": {"big": 123456789012345678901234, "i": i}, "team_id": 1 + i % 2}


@pytest.mark.parametrize("count", [5, 250])
def test_rows_are_stored_exactly_and_keys_come_back_in_order(served: TestClient, count: int) -> None:
    created = served.post("/person", json=[person(i) for i in range(count)])
    assert created.status_code == 201, created.text
    ids = created.json()["ids"]
    assert len(ids) == count and ids == sorted(ids) and len(set(ids)) == count
    for index in (0, count - 1):
        row = served.get(f"/person/{ids[index]}").json()
        sent = person(index)
        assert row["email"] == sent["email"] and row["born"] == "1990-02-28"
        assert row["seen"] == "2024-05-17T10:11:12.500000+02:00"
        assert Decimal(str(row["balance"])) == Decimal(str(sent["balance"]))
        assert row["tags"] == [index, "x"] and row["meta"] == {"big": 123456789012345678901234, "i": index}


def test_large_decimal_keeps_every_digit(served: TestClient) -> None:
    body = "[" + ",".join(f'{{"name": "n{i}", "balance": 12345678901234.5678}}' for i in range(150)) + "]"
    created = served.post("/person", content=body, headers={"content-type": "application/json"})
    assert created.status_code == 201
    assert '"balance":12345678901234.5678' in served.get(f"/person/{created.json()['ids'][-1]}").text


@pytest.mark.parametrize("count", [5, 250])
def test_chosen_and_drawn_keys_mix_and_the_sequence_moves_past_them(served: TestClient, count: int) -> None:
    rows = [{"name": f"n{i}", **({"id": 10_000 + i} if i % 3 == 0 else {})} for i in range(count)]
    ids = served.post("/person", json=rows).json()["ids"]
    assert [ids[i] for i in range(0, count, 3)] == [10_000 + i for i in range(0, count, 3)]
    later = served.post("/person", json={"name": "later"})
    assert later.status_code == 201 and later.json()["id"] > max(ids)


@pytest.mark.parametrize("count", [5, 250])
def test_a_bad_reference_fails_every_row_and_names_the_row(served: TestClient, count: int) -> None:
    rows = [person(i) for i in range(count)]
    rows[count - 2]["team_id"] = 99
    response = served.post("/person", json=rows)
    assert response.status_code == 409
    problem = response.json()
    assert any(str(count - 2) in issue["pointer"] for issue in problem.get("errors", [])) \
        or f"/{count - 2}" in problem["detail"], problem
    assert served.get("/person", params={"limit": 1}).json()["person"] == []


@pytest.mark.parametrize("count", [5, 250])
def test_a_duplicate_unique_value_writes_nothing(served: TestClient, count: int) -> None:
    rows = [person(i) for i in range(count)]
    rows[-1]["email"] = rows[0]["email"]
    response = served.post("/person", json=rows)
    assert response.status_code == 409, response.text
    assert served.get("/person", params={"limit": 1}).json()["person"] == []


@pytest.mark.parametrize("count", [5, 250])
def test_an_invalid_row_is_a_400_pointing_at_its_index(served: TestClient, count: int) -> None:
    rows = [person(i) for i in range(count)]
    rows[3]["born"] = "1990-02-30"
    del rows[count - 1]["name"]
    response = served.post("/person", json=rows)
    assert response.status_code == 400
    pointers = {issue["pointer"] for issue in response.json()["errors"]}
    assert {"/3/born", f"/{count - 1}/name"} <= pointers


def test_text_keys_of_many_rows(served: TestClient) -> None:
    created = served.post("/code", json=[{"slug": f"s{i:04}", "n": i} for i in range(300)])
    assert created.status_code == 201
    assert created.json()["ids"][:2] == ["s0000", "s0001"]
    again = served.post("/code", json=[{"slug": "s0005", "n": 1}] + [{"slug": f"t{i}"} for i in range(200)])
    assert again.status_code == 409
    assert served.get("/code", params={"limit": 1000}).json()["code"].__len__() == 300
