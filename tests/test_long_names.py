"""Names at PostgreSQL's 63-character limit: constraint names derived from them get truncated by the
database, yet errors must still name the field."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

TABLE, UNIQUE, PARENT = "t" * 60, "f" * 60, "g" * 60


def payload() -> dict[str, Any]:
    fields = [{"name": "id", "type": "integer"}, {"name": UNIQUE, "type": "string", "constraints": {"unique": True}},
              {"name": PARENT, "type": "integer"}]
    schema = {"fields": fields, "primaryKey": "id",
              "foreignKeys": [{"fields": PARENT, "reference": {"resource": "", "fields": "id"}}]}
    paths = {f"/{TABLE}": {"post": {}, "get": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": [{"name": TABLE, "tableSchema": schema}]},
                                     "api": {"apiSpec": {"paths": paths}}}}


def test_errors_name_fields_whose_constraint_names_were_truncated(client: TestClient) -> None:
    assert client.post("/generator", json=payload()).status_code == 201
    assert client.post(f"/{TABLE}", json={UNIQUE: "a"}).status_code == 201
    duplicate = client.post(f"/{TABLE}", json={UNIQUE: "a"})
    assert duplicate.status_code == 409
    assert duplicate.json()["fields"] == [UNIQUE]
    dangling = client.post(f"/{TABLE}", json={UNIQUE: "b", PARENT: 999})
    assert dangling.status_code == 409
    assert dangling.json()["fields"] == [PARENT]
