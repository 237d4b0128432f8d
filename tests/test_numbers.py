"""Numbers keep their exact decimal value on both databases (SQLite used to keep 15 digits) and still
compare and sort numerically; SQLite tables created before, with REAL columns, keep working."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from generator.app import create_app
from generator.config import Settings

TABLE = {"name": "n", "tableSchema": {"primaryKey": "id", "fields": [
    {"name": "id", "type": "integer"}, {"name": "v", "type": "number"}]}}  # fmt: skip
PAYLOAD = {"data_resource_schema": {"data": {"dataDictionary": [TABLE]}, "api": {"apiSpec": {"paths": {
    "/n": {"get": {}, "post": {}}, "/n/{id}": {"get": {}}}}}}}  # fmt: skip
VALUES = ["12345678901234.5678", "2", "10", "-1.5", "0.000000000000000000001", "98765432109876543210.123456789"]


def post_number(client: TestClient, text: str) -> Any:
    response = client.post("/n", content=f'{{"v": {text}}}', headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def exact(client: TestClient, path: str) -> Any:
    return json.loads(client.get(path).content, parse_float=Decimal)


@pytest.fixture
def numbers(client: TestClient) -> TestClient:
    assert client.post("/generator", json=PAYLOAD).status_code == 201
    for text in VALUES:
        post_number(client, text)
    return client


def test_numbers_keep_every_digit(numbers: TestClient) -> None:
    for key, text in enumerate(VALUES, 1):
        assert exact(numbers, f"/n/{key}")["v"] == Decimal(text)


def test_numbers_sort_and_compare_numerically(numbers: TestClient) -> None:
    ordered = [row["v"] for row in exact(numbers, "/n?order=v.asc")["n"]]
    assert ordered == sorted(Decimal(t) for t in VALUES)  # 2 before 10: not text order
    assert sorted(r["id"] for r in exact(numbers, "/n?v=gt.3")["n"]) == [1, 3, 6]
    assert [r["id"] for r in exact(numbers, "/n?v=eq.12345678901234.5678")["n"]] == [1]


@pytest.mark.parametrize("text", ["-1.7976931348623157e+308", "1.7976931348623157E308"])
def test_the_largest_doubles_are_stored_and_filtered(numbers: TestClient, text: str) -> None:
    key = post_number(numbers, text)  # a JSON body's number, and the same number in the query language
    assert exact(numbers, f"/n/{key}")["v"] == Decimal(text)
    assert [r["id"] for r in exact(numbers, f"/n?v=eq.{text.replace('+', '%2B')}")["n"]] == [key]


def test_a_sqlite_table_created_with_real_columns_still_serves(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite3"
    with sqlite3.connect(database) as connection:  # as the service created number columns before
        connection.execute("CREATE TABLE n (id INTEGER NOT NULL PRIMARY KEY, v FLOAT)")
        connection.execute("INSERT INTO n (id, v) VALUES (1, 2.5)")
    settings = Settings(database_url=f"sqlite:///{database}", payload_path=tmp_path / "payload.json")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.post("/generator", json=PAYLOAD).status_code == 201
        post_number(client, "10")
        assert [row["v"] for row in exact(client, "/n?order=v.desc")["n"]] == [Decimal("10"), Decimal("2.5")]
