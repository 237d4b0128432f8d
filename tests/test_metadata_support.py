"""Shared by the metadata-graph tests (no tests here): a service with the clinic-like generation in data
product `clinic` (owned by ROCKET), and a client that acts as named principals on the admin app and on the
`/openapi` mount (`x-test-as`, see tests/test_products_support.py)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.test_products_support import Actor, AsPrincipal

KEY = base64.b64encode(bytes(range(32))).decode()
PRODUCT = "clinic"
PATIENT = {"name": "patient", "tableSchema": {"primaryKey": "id", "fields": [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string", "description": "Full name"},
    {"name": "ssn", "type": "string", "protected": True, "searchable": True},
    {"name": "born", "type": "date"}]},
    "encryptionSchema": {"*": {"type": "AES_256_GCM", "key": "DRG_MD_TEST_KEY"}}}
VISIT = {"name": "visit", "tableSchema": {"primaryKey": "id", "fields": [
    {"name": "id", "type": "integer"}, {"name": "patient_id", "type": "integer", "constraints": {"required": True}},
    {"name": "at", "type": "datetime"}],
    "foreignKeys": [{"fields": "patient_id", "reference": {"resource": "patient", "fields": "id"}}]}}


def dataset(table: str, platform: str = "drg") -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:{platform},{table},PROD)"


def clinic_payload(*tables: dict[str, Any]) -> dict[str, Any]:
    tables = tables or (PATIENT, VISIT)
    paths = {f"/{t['name']}": {"get": {}} for t in tables}
    return {"data_resource_schema": {"name": "clinic", "data": {"dataDictionary": list(tables)},
                                     "api": {"apiSpec": {"paths": paths}}},
            "ignore_validation": True, "data_product": {"name": PRODUCT, "owner": "ROCKET"}}


def as_principals(client: TestClient) -> Actor:
    """The client's admin app and metadata mount take `x-test-as` principals."""
    client.app.admin = AsPrincipal(client.app.admin)
    client.app.mounts = tuple(dataclasses.replace(m, app=AsPrincipal(m.app)) if m.prefix == "/openapi" else m
                              for m in client.app.mounts)
    return Actor(client)


def generate(actor: Actor, payload: dict[str, Any], status: int = 201, as_: str = "rocket") -> dict[str, Any]:
    response = actor.post("/generator", as_=as_, json=payload)
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def graph(make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch) -> Actor:
    """A service whose generation (patient, visit) is data product `clinic`, owned by ROCKET."""
    monkeypatch.setenv("DRG_MD_TEST_KEY", KEY)
    actor = as_principals(make_client())
    generate(actor, clinic_payload())
    return actor


def upsert(actor: Actor, urn: str, aspect: dict[str, Any], as_: str = "rocket", status: int = 200,
           **kwargs: Any) -> Any:
    entity_type = urn.split(":")[2]
    response = actor.post("/openapi/entities/v1/", as_=as_, json=[
        {"entityType": entity_type, "entityUrn": urn, "aspect": aspect, **kwargs.pop("item", {})}], **kwargs)
    assert response.status_code == status, response.text
    return response


def latest(actor: Actor, *urns: str, as_: str = "rocket", **params: Any) -> dict[str, Any]:
    response = actor.get("/openapi/entities/v1/latest", as_=as_, params={"urns": list(urns), **params})
    assert response.status_code == 200, response.text
    return response.json()["responses"]


def batch_get(actor: Actor, entity_type: str, items: list[dict[str, Any]], as_: str = "rocket",
              **params: Any) -> list[dict[str, Any]]:
    response = actor.post(f"/openapi/v3/entity/{entity_type}/batchGet", as_=as_, json=items, params=params)
    assert response.status_code == 200, response.text
    return response.json()
