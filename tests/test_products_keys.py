"""Team keys (mint, list, rotate, revoke, at most two, 401 once inactive or revoked), the `Catalog` the data
plane reads, and `record_generation`: on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import Engine

from generator.errors import Problem
from generator.identity import Principal
from generator.products import catalog, lookup_team_key, record_generation
from generator.products.catalog import CatalogCache
from tests import test_products_support as support
from tests.test_products_support import PRINCIPALS, Actor, make_product

api = support.api  # the fixture
CREDENTIALS = "/teams/ROCKET/credentials"


def engine_of(api: Actor) -> Engine:
    return api.client.app.runtime.engine


def test_mint_shows_the_secret_once_and_lists_states(api: Actor) -> None:
    minted = api.post(CREDENTIALS)
    assert minted.status_code == 201, minted.text
    key = minted.json()
    assert key["state"] == "Active" and key["apiKey"].startswith(f"drg_{key['keyId']}_")
    listed = api.get(CREDENTIALS).json()["keys"]
    assert [(k["keyId"], k["state"]) for k in listed] == [(key["keyId"], "Active")]
    assert "apiKey" not in listed[0] and key["apiKey"].split("_")[-1] not in str(listed)


def test_a_third_key_is_429(api: Actor) -> None:
    assert api.post(CREDENTIALS).status_code == 201
    assert api.post(CREDENTIALS).status_code == 201
    third = api.post(CREDENTIALS)
    assert third.status_code == 429 and third.headers["content-type"] == "application/problem+json"
    assert "already holds 2 keys" in third.json()["detail"]
    assert api.put(CREDENTIALS).status_code == 429  # two active keys: rotation needs room too


def test_key_authenticates_as_the_team_read_only(api: Actor) -> None:
    raw = api.post(CREDENTIALS).json()["apiKey"]
    found = lookup_team_key(engine_of(api), raw)
    assert found == Principal(subject=f"team-key:{raw[4:20]}", kind="team_key", teams=frozenset({"ROCKET"}),
                              read_only=True)
    for wrong in ["", "drg_x", raw[:-1] + ("A" if raw[-1] != "A" else "B"), raw.replace(raw[4:20], "0" * 16)]:
        assert lookup_team_key(engine_of(api), wrong) is None


def test_the_key_over_http(api: Actor) -> None:
    """End to end through the dispatcher's authenticator: a valid key reads, a revoked one is a 401."""
    make_product(api)
    raw = api.post(CREDENTIALS).json()["apiKey"]
    read = api.client.get("/data-products/it", headers={"X-Auth-Token": raw})
    assert read.status_code == 200, read.text
    write = api.client.put("/data-products/it", headers={"X-Auth-Token": raw}, json={})
    assert write.status_code == 403 and "read-only" in write.json()["detail"]
    assert api.delete(CREDENTIALS).status_code == 204
    assert api.client.get("/data-products/it", headers={"X-Auth-Token": raw}).status_code == 401


def test_rotation_deactivates_the_old_key(api: Actor) -> None:
    old = api.post(CREDENTIALS).json()
    new = api.put(CREDENTIALS)
    assert new.status_code == 201 and new.json()["state"] == "Active"
    states = {k["keyId"]: k["state"] for k in api.get(CREDENTIALS).json()["keys"]}
    assert states == {old["keyId"]: "Inactive", new.json()["keyId"]: "Active"}
    assert lookup_team_key(engine_of(api), old["apiKey"]) is None  # inactive: the identity layer's 401
    assert lookup_team_key(engine_of(api), new.json()["apiKey"]) is not None
    newest = api.put(CREDENTIALS).json()  # the inactive key is revoked to make room
    assert {k["keyId"] for k in api.get(CREDENTIALS).json()["keys"]} == {new.json()["keyId"], newest["keyId"]}


def test_revoke_one_or_all(api: Actor) -> None:
    first, second = api.post(CREDENTIALS).json(), api.post(CREDENTIALS).json()
    assert api.delete(f"{CREDENTIALS}/{first['keyId']}").status_code == 204
    assert api.delete(f"{CREDENTIALS}/{first['keyId']}").status_code == 404
    assert lookup_team_key(engine_of(api), first["apiKey"]) is None
    assert api.delete(CREDENTIALS).status_code == 204
    assert api.get(CREDENTIALS).json()["keys"] == []
    assert lookup_team_key(engine_of(api), second["apiKey"]) is None
    assert api.delete(f"{CREDENTIALS}/not-a-key").status_code == 400


@pytest.mark.parametrize(("as_", "method", "status"), [
    ("galactic", "post", 403), ("galactic", "get", 403), ("galactic", "put", 403), ("galactic", "delete", 403),
    ("anonymous", "post", 401), ("anonymous", "get", 401),
    ("rocket-key", "post", 403), ("rocket-key", "get", 200),  # a key may list its team's keys, not mint
    ("admin", "post", 201), ("both", "post", 201),
])
def test_only_the_team_or_an_admin_manages_keys(api: Actor, as_: str, method: str, status: int) -> None:
    response = getattr(api, method)(CREDENTIALS, as_=as_)
    assert response.status_code == status, response.text
    if status == 403:
        assert ("read-only" if as_ == "rocket-key" else "team ROCKET") in response.json()["detail"]


def test_key_changes_are_audited_without_secrets(api: Actor) -> None:
    key = api.post(CREDENTIALS).json()
    api.put(CREDENTIALS)
    entries = api.get("/audit", as_="rocket").json()["entries"]
    assert [(e["action"], e["entity"]) for e in entries] == [("rotate", "credential"), ("deactivate", "credential"),
                                                            ("mint", "credential")]
    assert key["apiKey"] not in str(entries) and "digest" not in str(entries)
    assert api.get("/audit", as_="galactic").json()["entries"] == []


def test_catalog_answers_for_a_resource(api: Actor) -> None:
    make_product(api, multiTenant=True)
    api.post("/data-products/it/servings", json={"servingName": "web", "servingType": "api", "url": "/patient",
                                                 "accessRestriction": "TENANT",
                                                 "tenancyColumns": {"tenant": "tenantId", "org": "org"}})
    api.put("/data-products/it/access", json={"grantee": "GALACTIC", "servings": ["web"]})
    entry = catalog(engine_of(api)).resource("patient")
    assert entry is not None and (entry.product, entry.owner) == ("it", "ROCKET")
    (serving,) = entry.servings
    assert (serving.name, serving.access_restriction, serving.grantees) == ("web", "TENANT", {"GALACTIC"})
    assert (serving.tenancy.org, serving.tenancy.tenant, serving.tenancy.tenant_group) == (
        "org", "tenantId", "tenantGroupId")
    assert entry.servings_for({"GALACTIC"}) == (serving,) and entry.servings_for({"ROCKET"}) == ()
    api.delete("/data-products/it/access/GALACTIC/web")
    assert catalog(engine_of(api)).resource("patient").grantees == frozenset()  # at once in this process
    assert catalog(engine_of(api)).resource("nothing") is None


def test_other_processes_notice_within_the_interval(api: Actor) -> None:
    """A second cache on the same database stands for another process: it sees a change once its check
    interval has passed, and not before."""
    other = CatalogCache(engine_of(api), interval=0.5)
    before = other.get()
    make_product(api)
    assert other.get() is before  # checked less than an interval ago
    time.sleep(0.55)
    after = other.get()
    assert after.version > before.version and after.product("it") is not None


def claim(**section: Any) -> dict[str, Any]:
    return support.generation_payload(data_product=section)


def test_record_generation_puts_resources_in_the_named_product(api: Actor) -> None:
    engine = engine_of(api)
    found = record_generation(engine, PRINCIPALS["rocket"], claim(name="patients"), ["patient"], digest="abc")
    assert found is not None and (found.name, found.owner, found.exists) == ("patients", "ROCKET", False)
    entry = catalog(engine).resource("patient")
    assert (entry.product, entry.owner) == ("patients", "ROCKET")
    assert api.get("/data-products/patients").json()["owner"] == "ROCKET"
    logged = api.get("/data-products/patients/logs").json()["entries"]
    assert [(e["action"], e["entity"]) for e in logged] == [("generate", "generation"), ("create", "product")]
    assert logged[0]["after"] == {"resources": {"patient": {"product": "patients", "team": "ROCKET"}}}


def test_unclaimed_resources_belong_to_the_generating_team_and_keep_their_owner(api: Actor) -> None:
    engine = engine_of(api)
    record_generation(engine, PRINCIPALS["galactic"], support.generation_payload(), ["patient"])
    assert (catalog(engine).resource("patient").owner, catalog(engine).resource("patient").product) == (
        "GALACTIC", None)
    record_generation(engine, PRINCIPALS["rocket"], support.generation_payload(), ["patient", "visit"])
    assert catalog(engine).resource("patient").owner == "GALACTIC"  # regenerating does not take it over
    assert catalog(engine).resource("visit").owner == "ROCKET"
    with pytest.raises(Problem) as refused:  # rocket may not drop galactic's resource
        record_generation(engine, PRINCIPALS["rocket"], support.generation_payload(), ["visit"])
    assert refused.value.status == 403 and "patient" in refused.value.detail
    assert catalog(engine).resource("patient").owner == "GALACTIC"  # nothing changed
    record_generation(engine, PRINCIPALS["admin"], support.generation_payload(), ["visit"])
    assert catalog(engine).resource("patient") is None  # an administrator may drop it


def test_team_keys_cannot_generate(api: Actor) -> None:
    key = Principal(subject="team-key:x", kind="team_key", teams=frozenset({"ROCKET"}), read_only=True)
    with pytest.raises(Problem) as refused:
        record_generation(engine_of(api), key, support.generation_payload(), ["patient"])
    assert refused.value.status == 403 and "read-only" in refused.value.detail


@pytest.mark.parametrize(("who", "section", "status", "pointer"), [
    ("galactic", {"name": "it"}, 403, None),  # the product is ROCKET's
    ("rocket", {"name": "it", "owner": "GALACTIC"}, 409, None),  # the owner differs
    ("both", {"name": "new"}, 400, "/data_product/owner"),  # several teams: name the owner
    ("galactic", {"name": "new", "owner": "ROCKET"}, 403, None),
    ("rocket", {"name": "bad name"}, 400, "/data_product/name"),
    ("rocket", {"name": "x", "colour": 1}, 400, "/data_product/colour"),
])
def test_record_generation_refusals(api: Actor, who: str, section: dict[str, Any], status: int,
                                    pointer: str | None) -> None:
    make_product(api)
    with pytest.raises(Problem) as raised:
        record_generation(engine_of(api), PRINCIPALS[who], claim(**section), ["patient"])
    assert raised.value.status == status
    if pointer:
        assert raised.value.ext["errors"][0]["pointer"] == pointer
