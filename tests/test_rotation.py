"""Key rotation (`drg rotate-keys`, generator/rotation.py) while the service serves, on both databases.

Rows are written under key A; a regeneration makes B current with A in previousKeys; rotation then rewrites
them under B in batches while another service instance on the same database keeps answering reads and
blind-index filters. Rotation is interrupted twice (an exception from its progress callback, then
`max_batches`) and finished by the command line."""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient
from typer.testing import CliRunner

from generator.cli import cli
from generator.models.engine import create_database_engine
from generator.rotation import TableRotation, rotate_keys

KEY_A = base64.b64encode(bytes(range(7, 39))).decode()
KEY_B = base64.b64encode(bytes(range(150, 182))).decode()
ROWS, BATCH = 250, 100

A = {"type": "AES_256_GCM", "key": "DRG_ROT_KEY_A"}
B_AFTER_A = {"type": "AES_256_GCM", "key": "DRG_ROT_KEY_B", "previousKeys": ["DRG_ROT_KEY_A"]}
B = {"type": "AES_256_GCM", "key": "DRG_ROT_KEY_B"}
FIELDS = [{"name": "name", "type": "string", "protected": True, "searchable": True},
          {"name": "ssn", "type": "string", "protected": True},
          {"name": "age", "type": "integer"}]


def key_id(key: str) -> bytes:
    return hashlib.sha256(base64.b64decode(key)).digest()[:8]


def payload(entry: dict[str, Any]) -> dict[str, Any]:
    table = {"name": "patient", "tableSchema": {"fields": [{"name": "id", "type": "integer"}, *FIELDS],
                                                "primaryKey": "id"},
             "encryptionSchema": {"*": entry}}
    paths = {"/patient": {"get": {}, "post": {}}, "/patient/{id}": {"get": {}, "patch": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": [table]}, "api": {"apiSpec": {"paths": paths}}},
            "ignore_validation": True}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRG_ROT_KEY_A", KEY_A)
    monkeypatch.setenv("DRG_ROT_KEY_B", KEY_B)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


def key_ids(engine: Engine) -> dict[bytes, int]:
    """How many stored values (name and ssn) are under each key id, read from the raw table."""
    found: dict[bytes, int] = {}
    with engine.connect() as connection:
        for row in connection.execute(text("SELECT name, ssn FROM patient")):
            for stored in (value for value in row if value is not None):
                found[bytes(stored)[2:10]] = found.get(bytes(stored)[2:10], 0) + 1
    return found


class Reader(threading.Thread):
    """GET /patient, GET /patient/{id} and a blind-index filter in a loop; every answer checked."""

    def __init__(self, client: TestClient) -> None:
        super().__init__(daemon=True)
        self.client, self.stop, self.errors, self.requests = client, threading.Event(), [], 0

    def run(self) -> None:
        chance = random.Random(7)
        while not self.stop.is_set():
            i = chance.randrange(ROWS)
            self.check(self.client.get("/patient", params={"limit": 50, "offset": i // 50 * 50}), 50)
            self.check(self.client.get(f"/patient/{i + 1}"), None, f"name{i}")
            self.check(self.client.get("/patient", params={"name": f"eq.name{i}"}), 1, f"name{i}")

    def check(self, response: Any, rows: int | None, name: str | None = None) -> None:
        self.requests += 1
        if response.status_code != 200:
            self.errors.append(f"{response.request.url}: {response.status_code} {response.text[:200]}")
            return
        body = response.json()
        found = [body] if rows is None else body["patient"]
        if rows is not None and len(found) != rows or name is not None and found[0]["name"] != name:
            self.errors.append(f"{response.request.url}: unexpected rows {found[:2]}")


class Interrupted(Exception):
    pass


def interrupt(_: TableRotation) -> None:
    raise Interrupted  # as a Ctrl-C after the first batch committed


def test_rotation_while_serving_resumes_and_finishes(make_client: Callable[..., TestClient], keys: None,
                                                      engine: Engine, database_url: str) -> None:
    writer = make_client()
    assert writer.post("/generator", json=payload(A)).status_code == 201
    rows = [{"name": f"name{i}", "ssn": f"ssn-{i}", "age": i} for i in range(ROWS)]
    assert writer.post("/patient", json=rows).status_code == 201
    assert key_ids(engine) == {key_id(KEY_A): 2 * ROWS}

    regenerated = writer.post("/generator", json=payload(B_AFTER_A))
    assert regenerated.status_code == 201, regenerated.text  # only the encryptionSchema changed
    assert regenerated.json()["created_tables"] == []
    assert rotate_keys(engine, dry_run=True).tables[0].rows == ROWS

    reader = Reader(make_client())  # another instance on the same database, as a replica
    reader.start()
    try:
        with pytest.raises(Interrupted):
            rotate_keys(engine, batch_size=BATCH, on_batch=interrupt)
        assert key_ids(engine) == {key_id(KEY_A): 2 * (ROWS - BATCH), key_id(KEY_B): 2 * BATCH}
        stopped = rotate_keys(engine, batch_size=BATCH, max_batches=1)
        assert not stopped.finished and stopped.rows == BATCH
        assert rotate_keys(engine, dry_run=True).tables[0].rows == ROWS - 2 * BATCH
        result = CliRunner().invoke(cli, ["rotate-keys", "--batch-size", str(BATCH)],
                                    env={"DATABASE_URL": database_url})
        assert result.exit_code == 0, result.output
        assert f"patient: {ROWS - 2 * BATCH} rows rotated" in result.output
        assert f"done: {ROWS - 2 * BATCH} rows rotated in 1 tables" in result.output
        while reader.requests < 30 and reader.is_alive():  # a few rounds after rotation too
            reader.stop.wait(0.05)
    finally:
        reader.stop.set()
        reader.join(30)
    assert reader.errors == [] and reader.requests >= 30

    assert key_ids(engine) == {key_id(KEY_B): 2 * ROWS}
    again = rotate_keys(engine, batch_size=BATCH)
    assert again.finished and again.rows == 0  # nothing left: running it again is harmless
    assert writer.post("/generator", json=payload(B)).status_code == 201  # A retired
    retired = make_client()
    everything = retired.get("/patient", params={"limit": 1000}).json()["patient"]
    assert [(r["name"], r["ssn"]) for r in everything] == [(f"name{i}", f"ssn-{i}") for i in range(ROWS)]
    assert retired.get("/patient", params={"name": "eq.name123"}).json()["patient"][0]["id"] == 124


def test_dry_run_counts_and_changes_nothing(make_client: Callable[..., TestClient], keys: None,
                                            engine: Engine, database_url: str) -> None:
    client = make_client()
    client.post("/generator", json=payload(A))
    client.post("/patient", json=[{"name": "x", "ssn": None}, {"name": None, "ssn": None}])
    client.post("/generator", json=payload(B_AFTER_A))
    result = CliRunner().invoke(cli, ["rotate-keys", "--dry-run"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert "patient: 1 rows to rotate" in result.output  # nulls are not encrypted: nothing to rotate
    assert key_ids(engine) == {key_id(KEY_A): 1}


def test_a_value_under_no_configured_key_is_left_and_reported(make_client: Callable[..., TestClient], keys: None,
                                                               engine: Engine, database_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client()
    client.post("/generator", json=payload(A))
    client.post("/patient", json=[{"name": f"n{i}", "ssn": "s"} for i in range(3)])
    client.post("/generator", json=payload(B))  # A dropped before rotating: its values cannot be read
    result = CliRunner().invoke(cli, ["rotate-keys"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert "patient: 0 rows rotated, 6 values could not be decrypted" in result.output
    assert key_ids(engine) == {key_id(KEY_A): 6}  # left as they were: readable again once A is back


def test_without_a_generation_it_says_so(engine: Engine, database_url: str) -> None:
    result = CliRunner().invoke(cli, ["rotate-keys"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 1 and "no generation is recorded" in result.output


def test_a_composite_key_is_walked_in_key_order(make_client: Callable[..., TestClient], keys: None,
                                                engine: Engine) -> None:
    def visits(entry: dict[str, Any]) -> dict[str, Any]:
        fields = [{"name": "site", "type": "string"}, {"name": "day", "type": "date"},
                  {"name": "note", "type": "string", "protected": True, "searchable": True}]
        table = {"name": "visit", "tableSchema": {"fields": fields, "primaryKey": ["site", "day"]},
                 "encryptionSchema": {"note": entry}}
        paths = {"/visit": {"get": {}, "post": {}}}
        return {"data_resource_schema": {"data": {"dataDictionary": [table]}, "api": {"apiSpec": {"paths": paths}}},
                "ignore_validation": True}

    client = make_client()
    assert client.post("/generator", json=visits(A)).status_code == 201
    rows = [{"site": s, "day": f"2024-01-{d:02d}", "note": f"{s}{d}"} for s in ("b", "a", "c") for d in range(1, 8)]
    assert client.post("/visit", json=rows).status_code == 201
    assert client.post("/generator", json=visits(B_AFTER_A)).status_code == 201
    result = rotate_keys(engine, batch_size=4)
    assert result.rows == 21 and result.tables[0].batches == 6
    assert client.post("/generator", json=visits(B)).status_code == 201
    restarted = make_client()
    assert sorted(r["note"] for r in restarted.get("/visit", params={"limit": 100}).json()["visit"]) == sorted(
        r["note"] for r in rows)
    assert restarted.get("/visit", params={"note": "eq.c7"}).json()["visit"][0]["site"] == "c"
