"""Protected fields through the API: stored encrypted (no plaintext in the database), returned decrypted,
searchable by equality through a blind index, refused for anything a blind index cannot answer."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(100, 132))).decode()

TYPES = [  # (field type, a value as sent, the same value as read back)
    ("string", "Ann Example", "Ann Example"),
    ("number", 1234.5678, Decimal("1234.5678")),
    ("integer", 123456789, 123456789),
    ("boolean", True, True),
    ("date", "1990-02-28", "1990-02-28"),
    ("time", "10:11:12", "10:11:12"),
    ("datetime", "2024-05-17T10:11:12.5+02:00", "2024-05-17T10:11:12.500000+02:00"),
    ("year", 1999, 1999),
    ("yearmonth", "2024-05", "2024-05"),
    ("duration", "P1DT2H", "P1DT2H"),
    ("object", {"city": "Boston", "n": [1, 2]}, {"city": "Boston", "n": [1, 2]}),
    ("array", [1, "two", {"three": 3}], [1, "two", {"three": 3}]),
    ("geopoint", "42.36,-71.06", None),
    ("any", {"x": 1}, {"x": 1}),
]


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DRG_TEST_KEY_A", KEY_A)
    monkeypatch.setenv("DRG_TEST_KEY_B", KEY_B)
    yield


def payload(fields: list[dict[str, Any]], *, extra_paths: dict[str, Any] | None = None,
            schema: dict[str, Any] | None = None) -> dict[str, Any]:
    table = {"name": "patient", "tableSchema": {"fields": [{"name": "id", "type": "integer"}, *fields],
                                                "primaryKey": "id"},
             "encryptionSchema": schema or {"*": {"type": "AES_256_GCM", "key": "DRG_TEST_KEY_A"}}}
    paths = {"/patient": {"get": {}, "post": {}}, "/patient/{id}": {"get": {}, "put": {}, "patch": {}, "delete": {}},
             "/patient/query": {"post": {}}, **(extra_paths or {})}
    return {"data_resource_schema": {"data": {"dataDictionary": [table]}, "api": {"apiSpec": {"paths": paths}}},
            "ignore_validation": True}


FIELDS = [{"name": "name", "type": "string", "protected": True, "searchable": True},
          {"name": "ssn", "type": "string", "protected": True},
          {"name": "born", "type": "date", "protected": True, "searchable": True},
          {"name": "age", "type": "integer"}]


@pytest.fixture
def served(make_client: Callable[..., TestClient], keys: None) -> TestClient:
    client = make_client()
    response = client.post("/generator", json=payload(FIELDS))
    assert response.status_code == 201, response.text
    assert {(f["field"], f["searchable"]) for f in response.json()["protected_fields"]} == {
        ("name", True), ("ssn", False), ("born", True)}
    return client


def raw_rows(database_url: str, table: str = "patient") -> list[tuple[Any, ...]]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}")).all()]
    finally:
        engine.dispose()


def test_values_are_stored_encrypted_and_read_back(served: TestClient, database_url: str) -> None:
    created = served.post("/patient", json={"name": "Ann Secret", "ssn": "123-45-6789", "born": "1990-02-28",
                                            "age": 34})
    assert created.status_code == 201, created.text
    row = served.get(f"/patient/{created.json()['id']}").json()
    assert row == {"id": created.json()["id"], "name": "Ann Secret", "ssn": "123-45-6789", "born": "1990-02-28",
                   "age": 34}
    stored = repr(raw_rows(database_url))
    for plaintext in ("Ann Secret", "123-45-6789", "1990-02-28", "Ann", "6789"):
        assert plaintext not in stored
    assert served.get("/patient").json()["patient"] == [row]


def test_equality_filters_go_through_the_blind_index(served: TestClient) -> None:
    rows = [{"name": n, "ssn": "x", "born": b} for n, b in
            (("Ann", "1990-01-01"), ("Bob", "1990-01-01"), ("Ann", "1985-05-05"))]
    assert served.post("/patient", json=rows).status_code == 201
    names = lambda response: sorted(r["name"] for r in response.json()["patient"])  # noqa: E731
    assert names(served.get("/patient", params={"name": "eq.Ann"})) == ["Ann", "Ann"]
    assert names(served.get("/patient", params={"name": "Ann", "born": "1985-05-05"})) == ["Ann"]
    assert names(served.get("/patient", params={"name": "in.(Ann,Bob)"})) == ["Ann", "Ann", "Bob"]
    assert names(served.post("/patient/query", json={"name": "Bob"})) == ["Bob"]
    assert names(served.get("/patient", params={"name": "eq.ann"})) == []


@pytest.mark.parametrize(("params", "reason"), [
    ({"name": "gt.A"}, "only eq and in"),
    ({"name": "like.A*"}, "only eq and in"),
    ({"name": "neq.Ann"}, "only eq and in"),
    ({"ssn": "eq.x"}, "not searchable"),
    ({"order": "name.asc"}, "cannot order by name"),
])
def test_filters_a_blind_index_cannot_answer_are_400(served: TestClient, params: dict[str, str],
                                                     reason: str) -> None:
    response = served.get("/patient", params=params)
    assert response.status_code == 400
    assert reason in response.text


def test_null_tests_work_on_protected_fields(served: TestClient) -> None:
    served.post("/patient", json=[{"name": "A", "ssn": None}, {"name": "B", "ssn": "1"}])
    assert [r["name"] for r in served.get("/patient", params={"ssn": "is.null"}).json()["patient"]] == ["A"]


def test_put_and_patch_reencrypt_for_the_row(served: TestClient, database_url: str) -> None:
    key = served.post("/patient", json={"name": "Old Name", "ssn": "1"}).json()["id"]
    assert served.patch(f"/patient/{key}", json={"name": "New Name"}).json()["name"] == "New Name"
    assert served.put(f"/patient/{key}", json={"name": "Put Name", "ssn": "2"}).json()["ssn"] == "2"
    assert served.get("/patient", params={"name": "eq.Put Name"}).json()["patient"][0]["id"] == key
    assert "Put Name" not in repr(raw_rows(database_url))


def test_a_ciphertext_moved_to_another_row_is_refused(served: TestClient, database_url: str) -> None:
    first = served.post("/patient", json={"name": "First", "ssn": "111"}).json()["id"]
    second = served.post("/patient", json={"name": "Second", "ssn": "222"}).json()["id"]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE patient SET ssn = (SELECT ssn FROM patient WHERE id = :a) WHERE id = :b"),
                           {"a": first, "b": second})
    engine.dispose()
    response = served.get(f"/patient/{second}")
    assert response.status_code == 500
    assert "could not be decrypted" in response.json()["detail"] and "111" not in response.text
    assert served.get(f"/patient/{first}").json()["ssn"] == "111"


@pytest.mark.parametrize(("kind", "sent", "read"), TYPES, ids=[t[0] for t in TYPES])
def test_every_type_round_trips(make_client: Callable[..., TestClient], keys: None, database_url: str,
                                kind: str, sent: Any, read: Any) -> None:
    client = make_client()
    assert client.post("/generator", json=payload([{"name": "v", "type": kind, "protected": True}])).status_code == 201
    key = client.post("/patient", json={"v": sent}).json()["id"]
    value = client.get(f"/patient/{key}").json()["v"]
    if read is None:
        assert value is not None and value != ""
    elif isinstance(read, Decimal):
        assert Decimal(str(value)) == read
    else:
        assert value == read
    assert str(sent) not in repr(raw_rows(database_url))


@pytest.mark.parametrize(("schema", "variable"), [
    ({"name": {"type": "AES_256_GCM", "key": "DRG_TEST_UNSET"}}, "DRG_TEST_UNSET"),
    ({"name": {"type": "ROT13", "key": "DRG_TEST_KEY_A"}}, "ROT13"),
    ({"other": {"type": "AES_256_GCM", "key": "DRG_TEST_KEY_A"}}, "other"),
])
def test_unusable_keys_refuse_the_generation_and_create_nothing(make_client: Callable[..., TestClient], keys: None,
                                                                 schema: dict[str, Any], variable: str) -> None:
    client = make_client()
    response = client.post("/generator", json=payload([{"name": "name", "type": "string", "protected": True}],
                                                      schema=schema))
    assert response.status_code == 400, response.text
    assert variable in response.text and KEY_A not in response.text
    assert client.get("/patient").status_code == 404


def test_the_document_marks_protected_fields(served: TestClient) -> None:
    schema = served.get("/openapi.json").json()["components"]["schemas"]["patient"]["properties"]
    assert schema["name"]["x-protected"] is True and schema["name"]["x-searchable"] is True
    assert schema["ssn"]["x-searchable"] is False and "x-protected" not in schema["age"]


def test_a_wrong_key_after_restart_refuses_reads_not_garbage(make_client: Callable[..., TestClient], keys: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client()
    client.post("/generator", json=payload(FIELDS))
    key = client.post("/patient", json={"name": "Ann", "ssn": "1"}).json()["id"]
    monkeypatch.setenv("DRG_TEST_KEY_A", KEY_B)  # the variable now holds another key
    restarted = make_client()
    response = restarted.get(f"/patient/{key}")
    assert response.status_code == 500 and "could not be decrypted" in response.text
    assert os.environ["DRG_TEST_KEY_A"] not in response.text


def test_a_missing_text_key_is_a_client_error_not_a_crash(make_client: Callable[..., TestClient], keys: None) -> None:
    client = make_client()
    body = payload([{"name": "note", "type": "string", "protected": True}])
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"][0]["type"] = "string"
    assert client.post("/generator", json=body).status_code == 201
    response = client.post("/patient", json={"note": "no key"})
    assert 400 <= response.status_code < 500, response.text


def _stored_values(database_url: str, column: str) -> list[bytes]:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return [bytes(v) for (v,) in connection.execute(text(f"SELECT {column} FROM patient ORDER BY id"))
                    if v is not None]
    finally:
        engine.dispose()


@pytest.mark.parametrize("count", [3, 250], ids=["insert", "copy"])  # PostgreSQL COPYs from 100 rows
def test_many_rows_are_sealed_each_for_its_own_row(served: TestClient, database_url: str, count: int) -> None:
    rows: list[dict[str, Any]] = [{"name": f"Person {i % 7}", "ssn": None if i % 5 == 0 else f"ssn-{i}", "age": i}
                                  for i in range(count)]
    for i in range(0, count, 3):
        rows[i]["born"] = f"19{50 + i % 50}-01-0{1 + i % 9}"  # the others leave it out
    rows[1]["id"] = 10_000  # a chosen key among drawn ones
    created = served.post("/patient", json=rows)
    assert created.status_code == 201, created.text
    ids = created.json()["ids"]
    read = {r["id"]: r for r in served.get("/patient", params={"limit": 1000}).json()["patient"]}
    for key, sent in zip(ids, rows, strict=True):
        assert read[key] == {"id": key, "born": None, **sent}
    names = _stored_values(database_url, "name")
    assert len(names) == count and len({n[10:22] for n in names}) == count  # a fresh nonce for every value
    assert not any(b"Person" in value or b"ssn-" in value for value in names + _stored_values(database_url, "ssn"))
    found = served.get("/patient", params={"name": "eq.Person 3", "limit": 1000}).json()["patient"]
    expected = [key for key, row in zip(ids, rows, strict=True) if row["name"] == "Person 3"]
    assert sorted(r["id"] for r in found) == sorted(expected)


def test_a_page_with_one_moved_ciphertext_is_refused_whole(served: TestClient, database_url: str) -> None:
    ids = served.post("/patient", json=[{"name": f"P{i}", "ssn": f"secret-{i}"} for i in range(120)]).json()["ids"]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:  # row 60's ssn copied from row 59: a valid ciphertext, of another row
        connection.execute(text("UPDATE patient SET ssn = (SELECT ssn FROM patient WHERE id = :a) WHERE id = :b"),
                           {"a": ids[59], "b": ids[60]})
    engine.dispose()
    response = served.get("/patient", params={"limit": 100})
    assert response.status_code == 500, response.text
    assert "patient.ssn could not be decrypted" in response.json()["detail"] and "secret-" not in response.text
    assert served.get("/patient", params={"limit": 50}).status_code == 200  # the rows before it still read
    shown = served.get("/patient", params={"limit": 100, "select": "id,name"})  # ssn is neither shown nor opened
    assert shown.status_code == 200 and shown.json()["patient"][60] == {"id": ids[60], "name": "P60"}
    assert served.get("/patient", params={"limit": 100, "select": "id,ssn"}).status_code == 500


def test_many_rows_with_a_missing_text_key_are_a_client_error(make_client: Callable[..., TestClient],
                                                              keys: None) -> None:
    client = make_client()
    body = payload([{"name": "note", "type": "string", "protected": True, "searchable": True}])
    body["data_resource_schema"]["data"]["dataDictionary"][0]["tableSchema"]["fields"][0]["type"] = "string"
    assert client.post("/generator", json=body).status_code == 201
    rows: list[dict[str, Any]] = [{"id": f"k{i}", "note": f"n{i}"} for i in range(150)]
    del rows[120]["id"]
    response = client.post("/patient", json=rows)
    assert 400 <= response.status_code < 500, response.text
    assert client.get("/patient").json()["patient"] == []
    assert client.post("/patient", json=rows[:120]).status_code == 201  # the same rows with their keys
    assert client.get("/patient", params={"note": "eq.n7"}).json()["patient"] == [{"id": "k7", "note": "n7"}]


def test_embedded_rows_are_decrypted_both_ways(make_client: Callable[..., TestClient], keys: None,
                                               database_url: str) -> None:
    """Embeds read protected fields of the related table too: many (a doctor's patients) and one (a
    patient's doctor), each value decrypted, none returned as ciphertext."""
    doctor = {"name": "doctor", "tableSchema": {"primaryKey": "id", "fields": [
        {"name": "id", "type": "integer"}, {"name": "licence", "type": "string", "protected": True}]}}
    body = payload([*FIELDS, {"name": "doctor_id", "type": "integer"}],
                   extra_paths={"/doctor": {"get": {}, "post": {}}})
    tables = body["data_resource_schema"]["data"]["dataDictionary"]
    tables[0]["tableSchema"]["foreignKeys"] = [
        {"fields": "doctor_id", "reference": {"resource": "doctor", "fields": "id"}}]
    doctor["encryptionSchema"] = tables[0]["encryptionSchema"]
    tables.insert(0, doctor)
    client = make_client()
    assert client.post("/generator", json=body).status_code == 201
    assert client.post("/doctor", json={"id": 1, "licence": "LIC-1"}).status_code == 201
    for i in range(1, 4):
        row = {"id": i, "name": f"P{i}", "ssn": f"00{i}", "born": "1990-02-28", "age": i, "doctor_id": 1}
        assert client.post("/patient", json=row).status_code == 201
    doctors = client.get("/doctor", params={"select": "*,patient(*)"}).json()["doctor"]
    assert doctors[0]["licence"] == "LIC-1"
    assert sorted((p["name"], p["ssn"]) for p in doctors[0]["patient"]) == [("P1", "001"), ("P2", "002"), ("P3", "003")]
    patients = client.get("/patient", params={"select": "id,name,doctor(*)"}).json()["patient"]
    assert [(p["name"], p["doctor"]["licence"]) for p in patients] == [(f"P{i}", "LIC-1") for i in (1, 2, 3)]
    assert "LIC-1" not in str(raw_rows(database_url, "doctor")) and "P2" not in str(raw_rows(database_url))
