"""Shared by the data-product tests (no tests here): a service with one generation, and a client that acts as
different principals. The dispatcher authenticates every request; the tests replace the principal it put in
the scope, just in front of the admin app, by the one the `as_` name picks."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

import generator.app as app_module
from generator.identity import ANONYMOUS, PRINCIPAL_KEY, Principal
from generator.products import ROOTS

PRINCIPALS = {
    "rocket": Principal(subject="jessie", kind="user", teams=frozenset({"ROCKET"})),
    "galactic": Principal(subject="cyrus", kind="user", teams=frozenset({"GALACTIC"})),
    "both": Principal(subject="giovanni", kind="user", teams=frozenset({"ROCKET", "GALACTIC"})),
    "admin": Principal(subject="oak", kind="user", admin=True),
    "anonymous": ANONYMOUS,
    "rocket-key": Principal(subject="team-key:0000000000000000", kind="team_key", teams=frozenset({"ROCKET"}),
                            read_only=True),
}
PATIENT = {
    "name": "patient",
    "tableSchema": {"primaryKey": "id", "fields": [
        {"name": "id", "type": "integer"}, {"name": "name", "type": "string"}, {"name": "org", "type": "string"},
        {"name": "tenantId", "type": "string"}, {"name": "tenantGroupId", "type": "string"}]},
}


def generation_payload(*tables: dict[str, Any], **top: Any) -> dict[str, Any]:
    tables = tables or (PATIENT,)
    paths = {f"/{t['name']}": {"get": {}} for t in tables}
    return {"data_resource_schema": {"name": "products test", "data": {"dataDictionary": list(tables)},
                                     "api": {"apiSpec": {"paths": paths}}}, **top}


class AsPrincipal:
    """ASGI middleware: `x-test-as: <name>` makes the request that principal."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        for key, value in scope.get("headers", []):
            if key == b"x-test-as":
                scope[PRINCIPAL_KEY] = PRINCIPALS[value.decode()]
        await self.app(scope, receive, send)


class Actor:
    """`actor.put(path, as_="rocket", json=...)`: the test client, as a named principal."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __getattr__(self, method: str) -> Any:
        def call(path: str, as_: str = "rocket", **kwargs: Any) -> Any:
            headers = {**kwargs.pop("headers", {}), "x-test-as": as_}
            return self.client.request(method.upper(), path, headers=headers, **kwargs)

        return call


@pytest.fixture
def api(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Actor:
    """A service whose generation has `patient`, with the product routes reachable."""
    if not ROOTS <= app_module.ADMIN_ROOTS:  # until the dispatcher routes them (see generator/products/README)
        monkeypatch.setattr(app_module, "ADMIN_ROOTS", app_module.ADMIN_ROOTS | ROOTS)
    client.app.admin = AsPrincipal(client.app.admin)
    response = client.post("/generator", json=generation_payload())
    assert response.status_code == 201, response.text
    return Actor(client)


def make_product(api: Actor, name: str = "it", owner: str = "ROCKET", **body: Any) -> dict[str, Any]:
    response = api.put(f"/data-products/{name}", json={"owner": owner, **body})
    assert response.status_code == 201, response.text
    return response.json()


S3_SERVINGS = [
    {"servingName": "open", "servingType": "S3", "url": "s3://cds-data-product-dev/it/open", "schemaUrl": "TBD"},
    {"servingName": "orglevel", "servingType": "S3", "url": "s3://cds-data-product-dev/it/orglevel",
     "schemaUrl": "TBD", "accessRestriction": "ORGANIZATION"},
    {"servingName": "tenantlevel", "servingType": "S3", "url": "s3://cds-data-product-dev/it/tenantlevel",
     "schemaUrl": "TBD", "accessRestriction": "TENANT"},
]
