"""JSON-like fields hold any JSON number, integers beyond 64 bits included, and give them back exactly
(orjson, used for speed, stops at 64 bits; schemathesis found the 500 this used to be)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

BODY = (b'{"object": {"big": -18446744073709551616, "list": [12345678901234567890123, 1.5]},'
        b' "any": 99999999999999999999}')


def test_integers_beyond_64_bits_round_trip_in_json_fields(
    client: TestClient, load_payload: Callable[[str], dict[str, Any]], database_url: str
) -> None:
    assert client.post("/generator", json=load_payload("all_types.json")).status_code == 201
    created = client.post("/people", content=BODY, headers={"content-type": "application/json"})
    assert created.status_code == 201, created.text
    fetched = client.get(created.headers["location"])
    assert fetched.status_code == 200
    assert b'"big":-18446744073709551616' in fetched.content
    assert b"12345678901234567890123" in fetched.content
    if database_url.startswith("postgresql"):
        assert fetched.json()["any"] == 99999999999999999999
    else:  # SQLite gives a JSON column numeric affinity: a bare scalar beyond 64 bits is kept as a double
        assert fetched.json()["any"] == float(99999999999999999999)
