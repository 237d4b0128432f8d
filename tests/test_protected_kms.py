"""Protected fields under `AWS_AES_Engine` through the API, against moto's KMS server, on both databases.

A searchable KMS field's blind-index key is random and stored only wrapped (`drg_blind_keys`,
generator/models/blind_keys.py): after a restart the service must index and search with the same key, or
equality filters stop finding rows written before. KMS calls are counted from moto's access log: data keys
are cached, so 10,000 values cost a handful of calls, not thousands."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from generator.crypto import build_ciphers
from generator.models import blind_keys
from generator.models.engine import create_database_engine
from generator.payload import parse_payload
from generator.rotation import rotate_keys
from tests.support.moto_server import MotoServer

VALUES = 10_000
FIELDS = [{"name": "name", "type": "string", "protected": True, "searchable": True},
          {"name": "ssn", "type": "string", "protected": True},
          {"name": "age", "type": "integer"}]


def payload(key: str = "DRG_TEST_KMS_KEY", previous: tuple[str, ...] = ()) -> dict[str, Any]:
    entry = {"type": "AWS_AES_Engine", "key": key, "previousKeys": list(previous)}
    table = {"name": "patient", "tableSchema": {"fields": [{"name": "id", "type": "integer"}, *FIELDS],
                                                "primaryKey": "id"},
             "encryptionSchema": {"*": entry}}
    paths = {"/patient": {"get": {}, "post": {}}, "/patient/{id}": {"get": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": [table]}, "api": {"apiSpec": {"paths": paths}}},
            "ignore_validation": True}


@pytest.fixture
def kms_key(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    arn = boto3.client("kms").create_key(Description="drg protected fields")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("DRG_TEST_KMS_KEY", arn)
    return arn


def kms_calls(server: MotoServer) -> int:
    """KMS requests moto answered so far (every KMS action is a `POST /`), once its log has caught up."""
    previous, settled = -1, time.monotonic() + 0.5
    while True:
        count = sum('"POST / HTTP' in line for line in server.request_lines())
        if count == previous and time.monotonic() >= settled:
            return count
        previous = count
        time.sleep(0.1)


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(row["name"] for row in response.json()["patient"])


def test_equality_filters_find_rows_after_a_restart(make_client: Callable[..., TestClient], kms_key: str) -> None:
    """Fails unless the runtime builds its ciphers with the stored blind-index keys (blind_keys.ciphers_for)."""
    first = make_client()
    assert first.post("/generator", json=payload()).status_code == 201
    assert first.post("/patient", json=[{"name": n, "ssn": "1"} for n in ("Ann", "Bob", "Ann")]).status_code == 201
    assert names(first.get("/patient", params={"name": "eq.Ann"})) == ["Ann", "Ann"]

    restarted = make_client()  # a restart, or another replica booting on the same database
    assert names(restarted.get("/patient", params={"name": "eq.Ann"})) == ["Ann", "Ann"]
    assert restarted.post("/patient", json={"name": "Bob", "ssn": "2"}).status_code == 201
    assert names(restarted.get("/patient", params={"name": "in.(Bob)"})) == ["Bob", "Bob"]
    assert names(first.get("/patient", params={"name": "eq.Bob"})) == ["Bob", "Bob"]  # the other one agrees


def test_the_first_stored_key_wins(kms_key: str, database_url: str) -> None:
    engine: Engine = create_database_engine(database_url)
    try:
        generation = parse_payload(payload())
        mine = build_ciphers(generation)
        theirs = build_ciphers(generation)  # another process built at the same time: a different key
        assert mine[("patient", "name")].blind_key_is_new and not mine[("patient", "ssn")].searchable
        assert blind_keys.store_new(engine, mine) is False
        assert blind_keys.store_new(engine, theirs) is True  # it lost: it must rebuild with the stored key
        assert blind_keys.load(engine) == {("patient", "name"): mine[("patient", "name")].wrapped_blind_key}
        rebuilt = blind_keys.ciphers_for(engine, generation)[("patient", "name")]
        assert not rebuilt.blind_key_is_new
        winner, loser = mine[("patient", "name")], theirs[("patient", "name")]
        assert rebuilt.blind("Ann") == winner.blind("Ann") != loser.blind("Ann")
    finally:
        engine.dispose()


def test_ten_thousand_values_cost_a_handful_of_kms_calls(make_client: Callable[..., TestClient], kms_key: str,
                                                         aws: MotoServer) -> None:
    client = make_client()
    assert client.post("/generator", json=payload()).status_code == 201
    before = kms_calls(aws)
    rows = [{"name": f"name{i}", "ssn": f"{i:09d}", "age": i} for i in range(VALUES)]
    assert client.post("/patient", json=rows).status_code == 201
    written = kms_calls(aws) - before

    read = 0
    url: str | None = "/patient?limit=1000"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        read += len(page.json()["patient"])
        url = next((link["href"] for link in page.json()["links"] if link["rel"] == "next"), None)
    assert read == VALUES
    assert names(client.get("/patient", params={"name": "eq.name9999"})) == ["name9999"]
    total = kms_calls(aws) - before
    assert written <= 2 and total <= 4, (written, total)  # one data key; its decryption cached

    restarted = make_client()  # a cold cache: the blind key and the data key are unwrapped once each
    start = kms_calls(aws)
    assert restarted.get("/patient/5000").json()["ssn"] == f"{4999:09d}"
    assert len(restarted.get("/patient", params={"limit": 1000}).json()["patient"]) == 1000
    assert kms_calls(aws) - start <= 2


def test_a_kms_key_change_rewraps_the_blind_key_and_reencrypts(make_client: Callable[..., TestClient], kms_key: str,
                                                                database_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client()
    assert client.post("/generator", json=payload()).status_code == 201
    assert client.post("/patient", json=[{"name": n, "ssn": n} for n in ("Ann", "Bob", "Ann")]).status_code == 201
    kms = boto3.client("kms")
    new_key = kms.create_key(Description="drg protected fields, next")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("DRG_TEST_KMS_KEY_NEXT", new_key)
    assert client.post("/generator", json=payload("DRG_TEST_KMS_KEY_NEXT", ("DRG_TEST_KMS_KEY",))).status_code == 201

    engine = create_database_engine(database_url)
    try:
        result = rotate_keys(engine)
        assert result.rewrapped == [("patient", "name")] and result.rows == 3
        new_id = hashlib.sha256(new_key.encode()).digest()[:8]
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT name, ssn FROM patient")).all()
            blob = connection.execute(text("SELECT wrapped FROM drg_blind_keys")).scalar_one()
        assert {bytes(value)[2:10] for row in stored for value in row} == {new_id}
        assert bytes(blob)[2:10] == new_id
        assert rotate_keys(engine).rewrapped == []
    finally:
        engine.dispose()

    kms.disable_key(KeyId=kms_key.rsplit("/", 1)[1])  # moto: by id, not ARN; and it does not enforce it, but
    # the service itself refuses values and blobs under a KMS key that is neither `key` nor in `previousKeys`:
    assert client.post("/generator", json=payload("DRG_TEST_KMS_KEY_NEXT")).status_code == 201
    restarted = make_client()
    assert names(restarted.get("/patient", params={"name": "eq.Ann"})) == ["Ann", "Ann"]
    assert [r["ssn"] for r in restarted.get("/patient").json()["patient"]] == ["Ann", "Bob", "Ann"]
