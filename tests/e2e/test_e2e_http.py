"""The generated REST API over real HTTP: uvicorn on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.e2e.helpers import assert_problem, client, exact_json
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]


def test_default_payload_crud_over_http(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path)
    with client(server) as http:
        generated = http.post("/generator", json=load_payload("default.json"))
        assert generated.status_code == 201, generated.text
        assert {"people", "team"} <= set(generated.json()["created_tables"])

        document = http.get("/openapi.json")
        assert document.status_code == 200, document.text
        assert document.headers["content-type"].startswith("application/json")
        paths = document.json()["paths"]
        assert set(paths["/people"]) == {"get", "post"}
        assert set(paths["/people/{id}"]) == {"get", "put", "patch", "delete"}
        assert "/order" not in paths and "/required" not in paths  # tables without whitelisted routes

        created = http.post("/people", json={"name": "Ann"})
        assert created.status_code == 201, created.text
        key = created.json()["id"]
        assert created.headers["location"] == f"/people/{key}"

        listed = http.get("/people")
        assert listed.status_code == 200, listed.text
        assert listed.json()["people"] == [{"id": key, "name": "Ann"}]

        read = http.get(created.headers["location"])
        assert read.status_code == 200, read.text
        assert read.json() == {"id": key, "name": "Ann"}

        replaced = http.put(f"/people/{key}", json={"name": "Bea"})
        assert replaced.status_code == 200, replaced.text
        assert replaced.json() == {"id": key, "name": "Bea"}

        patched = http.patch(f"/people/{key}", json={"name": "Cy"})
        assert patched.status_code == 200, patched.text
        assert patched.json() == {"id": key, "name": "Cy"}
        assert http.get(f"/people/{key}").json() == {"id": key, "name": "Cy"}

        # PUT on a key that does not exist yet creates the row there.
        put_new = http.put("/people/77", json={"name": "Dee"})
        assert put_new.status_code == 201, put_new.text
        assert put_new.json() == {"id": 77, "name": "Dee"}
        assert put_new.headers["location"] == "/people/77"

        deleted = http.delete(f"/people/{key}")
        assert deleted.status_code == 204, deleted.text
        assert deleted.content == b""
        assert_problem(http.get(f"/people/{key}"), 404)
        assert_problem(http.delete(f"/people/{key}"), 404)
        assert http.get("/people").json()["people"] == [{"id": 77, "name": "Dee"}]


def test_bad_requests_are_problem_json(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path)
    with client(server) as http:
        rejected = http.post("/generator", json=load_payload("foreign_key_missing_table.json"))
        body = assert_problem(rejected, 400)
        assert body["errors"], body
        assert http.get("/health").json()["generation"] is None  # nothing was applied

        assert http.post("/generator", json=load_payload("default.json")).status_code == 201

        unknown = assert_problem(http.post("/people", json={"name": "Ann", "nope": 1}), 400)
        assert {"pointer": "/nope"}.items() <= unknown["errors"][0].items(), unknown

        wrong_type = assert_problem(http.post("/people", json={"name": 5}), 400)
        assert any(e["pointer"] == "/name" for e in wrong_type["errors"]), wrong_type

        broken = http.post("/people", content=b'{"name": ', headers={"content-type": "application/json"})
        assert_problem(broken, 400)

        assert_problem(http.patch("/people/1", json={"id": 2, "name": "x"}), 409)  # valid, conflicts with the path
        assert_problem(http.get("/people/424242"), 404)
        assert_problem(http.delete("/team/1"), 405)  # DELETE /team/{id} is not whitelisted
        assert http.get("/people").json()["people"] == []  # none of the bad requests wrote a row


ALL_TYPES_ROW = {
    "name": "Ann",
    "string": "héllo ✓ \"quoted\"",
    "number": Decimal("-1234.5678"),
    "integer": 2**62 + 1,
    "boolean": True,
    "object": {"a": [1, {"b": None}], "c": "d"},
    "array": [1, "two", None, {"x": 3.5}],
    "date": "2024-02-29",
    "time": "13:45:30.123456",
    "datetime": "2024-02-29T13:45:30.123456+05:30",
    "year": 2024,
    "yearmonth": "2024-02",
    "duration": "P1Y2M3DT4H5M6.5S",
    "geopoint": "12.5,-45.25",
    "geojson": {"type": "Point", "coordinates": [1.5, 2.5]},
    "any": {"k": [1, "x"]},
}


def _json_text(value: dict[str, Any]) -> bytes:
    """JSON with each Decimal written as the exact number it holds."""
    text = json.dumps(value, default=lambda d: f"@@{d}@@", ensure_ascii=False)
    return text.replace('"@@', "").replace('@@"', "").encode()


def test_all_types_row_round_trips_over_http(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path)
    nulls = {name: None for name in ALL_TYPES_ROW} | {"datetime": "1999-12-31T23:59:59.000001-08:00"}
    with client(server) as http:
        assert http.post("/generator", json=load_payload("all_types.json")).status_code == 201
        keys: list[int] = []
        for row in (ALL_TYPES_ROW, nulls):
            created = http.post("/people", content=_json_text(row), headers={"content-type": "application/json"})
            assert created.status_code == 201, created.text
            keys.append(created.json()["id"])

        full = http.get(f"/people/{keys[0]}")
        assert full.status_code == 200, full.text
        assert exact_json(full) == {"id": keys[0], **ALL_TYPES_ROW}
        # Exact text for the values a lossy store or serialiser would change.
        assert '"datetime":"2024-02-29T13:45:30.123456+05:30"' in full.text.replace(" ", "")
        assert '"number":-1234.5678' in full.text.replace(" ", "")
        assert f'"integer":{2**62 + 1}' in full.text.replace(" ", "")

        empty = http.get(f"/people/{keys[1]}")
        assert empty.status_code == 200, empty.text
        assert exact_json(empty) == {"id": keys[1], **nulls}

        listed = http.get("/people")
        assert listed.status_code == 200, listed.text
        assert exact_json(listed)["people"] == [{"id": keys[0], **ALL_TYPES_ROW}, {"id": keys[1], **nulls}]
