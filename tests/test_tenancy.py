"""Randomized cross-tenant test: several orgs, tenants and tenant groups, thousands of rows, dozens of principals
signed as HS256 JWTs; every route family (list, get, query GET and POST, counts, CSV, embeds, the many-to-many
list, the PostgREST surface) returns exactly the rows the data-product policy allows: zero leaked, zero
missing. The expected set is computed here in Python from the policy's rules (generator/policies), not from
the service. Then writes: readers, outsiders and an owner-team member bounded by its tenancy claims.

PostgreSQL runs the full size (about 2,000 rows, 24 principals); SQLite a smaller variant of the same test."""

from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

SECRET = "tenancy-test-secret-0123456789abcdef"  # HS256 needs at least 32 bytes
SEED = 20261124
ORGS = ["acme", "globex", "initech"]
TENANTS = ["t1", "t2", "t3", "104"]  # "104" is claimed as an integer by one principal (taken as text)
GROUPS = ["g1", "g2"]
UNRESTRICTED = "unrestricted"
PRODUCT = "tenancy"
SIZES = {"postgresql": (2000, 24, 40), "sqlite": (600, 10, 15)}  # rows, principals, labels


def field(name: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_}


def payload() -> dict[str, Any]:
    records = {"name": "records", "tableSchema": {"primaryKey": "id", "fields": [
        field("id", "integer"), field("org"), field("tenantId"), field("tenantGroupId"), field("value", "integer"),
        field("note")]}}  # fmt: skip
    labels = {"name": "labels", "tableSchema": {"primaryKey": "id", "fields": [field("id", "integer"),
                                                                                field("name")]}}
    paths = {
        "/records": {"get": {}, "post": {}},
        "/records/{id}": {"get": {}, "patch": {}, "delete": {}},
        "/records/query": {"get": {}, "post": {}},
        "/labels": {"get": {}, "post": {}},
        "/labels/{id}": {"get": {}},
        "/labels/{id}/records": {"get": {}, "put": {}},
    }
    return {"data_resource_schema": {"name": "tenancy test", "data": {
        "dataDictionary": [records, labels], "relationships": {"manyToMany": [["labels", "records"]]}},
        "api": {"apiSpec": {"paths": paths}}}}


def token(subject: str, groups: Iterable[str], **claims: Any) -> dict[str, str]:
    body = {"sub": subject, "exp": int(time.time()) + 3600, "groups": list(groups), **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, SECRET, algorithm='HS256')}"}


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    orgs: frozenset[str]
    tenants: frozenset[str]
    groups: frozenset[str]

    def sees(self, row: dict[str, Any]) -> bool:
        """The policy's TENANT rule: org among the caller's, and the tenant unrestricted or the caller's, or the
        tenant group the caller's (SQL NULLs match nothing)."""
        if row["org"] not in self.orgs:
            return False
        return (row["tenantId"] == UNRESTRICTED or row["tenantId"] in self.tenants
                or row["tenantGroupId"] in self.groups)


def as_set(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = value if isinstance(value, list) else [value]
    return frozenset(str(item) for item in items)


def callers(rng: random.Random, count: int) -> list[Caller]:
    """Fixed corner cases first (empty claims, org only, a single-string claim, an integer tenant, everything),
    then random ones: each claim absent, empty, or a random subset."""
    fixed: list[dict[str, Any]] = [
        {},
        {"orgs": [], "tenantIds": [], "tenantGroupIds": []},
        {"orgs": ["acme"]},  # org only: the unrestricted rows of acme
        {"orgs": "globex", "tenantIds": "t2"},  # single strings
        {"orgs": ["initech", "acme"], "tenantIds": [104]},  # an integer tenant, taken as text
        {"tenantIds": TENANTS, "tenantGroupIds": GROUPS},  # tenants but no org: nothing
        {"orgs": ORGS, "tenantGroupIds": ["g1"]},
        {"orgs": ORGS, "tenantIds": TENANTS, "tenantGroupIds": GROUPS},  # everything
        {"orgs": ["nowhere"], "tenantIds": TENANTS},
    ]
    found = []
    for index in range(count):
        if index < len(fixed):
            claims = fixed[index]
        else:
            claims = {}
            for claim, universe in (("orgs", ORGS), ("tenantIds", TENANTS), ("tenantGroupIds", GROUPS)):
                shape = rng.random()
                if shape < 0.1:
                    continue  # absent
                claims[claim] = [] if shape < 0.2 else rng.sample(universe, rng.randint(1, len(universe)))
        name = f"reader-{index}"
        found.append(Caller(name, token(name, ["G_TEAM_READERS", "G_TEAM_UNRELATED"], **claims),
                            as_set(claims.get("orgs")), as_set(claims.get("tenantIds")),
                            as_set(claims.get("tenantGroupIds"))))
    return found


def record_rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = []
    for id_ in range(1, count + 1):
        draw = rng.random()
        org = None if draw < 0.02 else rng.choice(ORGS)
        tenant = None if draw > 0.98 else (UNRESTRICTED if rng.random() < 0.15 else rng.choice(TENANTS))
        group = None if rng.random() < 0.1 else rng.choice(GROUPS)
        rows.append({"id": id_, "org": org, "tenantId": tenant, "tenantGroupId": group,
                     "value": rng.randint(0, 999), "note": f"row {id_}, with a comma"})
    return rows


def created(response: Any) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


@dataclass
class World:
    client: TestClient
    rows: dict[int, dict[str, Any]]
    links: dict[int, set[int]]  # label id -> record ids


def build_world(client: TestClient, rng: random.Random, rows: int, labels: int) -> World:
    """As the developer (no token: an administrator in development mode): the generation, the data product
    with a TENANT serving of records and an open serving of labels granted to READERS, then the data."""
    created(client.post("/generator", json=payload()))
    created(client.put(f"/data-products/{PRODUCT}", json={"owner": "OWNER", "multiTenant": True}))
    created(client.post(f"/data-products/{PRODUCT}/servings", json={
        "servingName": "records-api", "servingType": "api", "url": "/records", "accessRestriction": "TENANT"}))
    created(client.post(f"/data-products/{PRODUCT}/servings", json={
        "servingName": "labels-api", "servingType": "api", "url": "/labels"}))
    created(client.put(f"/data-products/{PRODUCT}/access",
                       json={"grantee": "READERS", "servings": ["records-api", "labels-api"]}))
    records = record_rows(rng, rows)
    created(client.post("/records", json=records))
    created(client.post("/labels", json=[{"id": i, "name": f"label {i}"} for i in range(1, labels + 1)]))
    links: dict[int, set[int]] = {}
    for label in range(1, labels + 1):
        linked = set(rng.sample(range(1, rows + 1), rng.randint(0, rows // 10))) if label > 1 else set()
        links[label] = linked
        assert client.put(f"/labels/{label}/records", json=sorted(linked)).status_code in (200, 204)
    return World(client, {row["id"]: row for row in records}, links)


# -- reading a route family to the end -----------------------------------------------------------------------


def follow(client: TestClient, headers: dict[str, str], path: str, key: str) -> list[dict[str, Any]]:
    """Every row of a paged GET, following `next` links; pages never overlap."""
    found: list[dict[str, Any]] = []
    url: str | None = path
    while url is not None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        body = response.json()
        found += body[key]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    return found


def follow_post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url, request = "/records/query", body
    while True:
        response = client.post(url, json=request, headers=headers)
        assert response.status_code == 200, (url, request, response.text)
        answer = response.json()
        found += answer["records"]
        link = next((link for link in answer["links"] if link["rel"] == "next"), None)
        if link is None:
            return found
        assert link["method"] == "POST"
        url, request = link["href"], link["body"]


def ids_of(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


def exactly(found: list[int], expected: Iterable[int], where: str, who: str) -> None:
    expected = sorted(expected)
    assert len(found) == len(set(found)), f"{who}: {where} repeated rows"
    leaked, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    assert not leaked and not missing, f"{who}: {where} leaked {leaked[:20]} missing {missing[:20]}"


def count_of(response: Any) -> int:
    assert response.status_code in (200, 206), response.text
    return int(response.headers["content-range"].rsplit("/", 1)[1])


def check_reader(world: World, caller: Caller, rng: random.Random) -> None:
    client, headers, who = world.client, caller.headers, caller.name
    visible = {id_ for id_, row in world.rows.items() if caller.sees(row)}
    high = {id_ for id_ in visible if world.rows[id_]["value"] >= 500}

    # list, with keyset cursors; the rows are the stored ones
    listed = follow(client, headers, "/records?limit=173&order=value.desc", "records")
    exactly(ids_of(listed), visible, "GET /records", who)
    assert all(row == world.rows[row["id"]] for row in listed), who

    # get: every visible id on a sample of the rest (all ids when few)
    hidden = sorted(set(world.rows) - visible)
    for id_ in sorted(visible)[:60] + rng.sample(sorted(visible), min(20, len(visible))):
        response = client.get(f"/records/{id_}", headers=headers)
        assert response.status_code == 200 and response.json() == world.rows[id_], (who, id_, response.text)
    for id_ in rng.sample(hidden, min(60, len(hidden))) + [len(world.rows) + 1]:
        response = client.get(f"/records/{id_}", headers=headers)
        assert response.status_code == 404, (who, id_, response.status_code, response.text)

    # queries, GET and POST, filtered and paged
    exactly(ids_of(follow(client, headers, "/records/query?value=gte.500&limit=97", "records")), high,
            "GET /records/query", who)
    exactly(ids_of(follow(client, headers, "/records/query?limit=1000", "records")), visible,
            "GET /records/query (no filter)", who)
    exactly(ids_of(follow_post(client, headers, {"value": {"gte": 500}, "limit": 131, "order": "id.desc"})),
            high, "POST /records/query", who)
    exactly(ids_of(follow_post(client, headers, {"limit": 1000})), visible, "POST /records/query (no filter)", who)
    in_group = {id_ for id_ in visible if world.rows[id_]["tenantGroupId"] == "g1"}
    exactly(ids_of(follow_post(client, headers, {"tenantGroupId": "g1", "limit": 1000})), in_group,
            "POST /records/query by tenant group", who)

    # counts
    counted = {"Prefer": "count=exact", **headers}
    listing = client.get("/records?limit=1", headers=counted)
    assert listing.json()["count"] == len(visible) == count_of(listing), (who, listing.headers)
    assert count_of(client.get("/records/query?value=gte.500&limit=1", headers=counted)) == len(high), who
    assert client.post("/records/query", json={"value": {"gte": 500}, "limit": 1},
                       headers=counted).json()["count"] == len(high), who
    assert count_of(client.get("/rest/records?limit=1", headers=counted)) == len(visible), who

    # CSV: a header row, then exactly the visible rows
    csv_ids: list[int] = []
    for offset in range(0, len(world.rows), 1000):
        response = client.get(f"/records?select=id,org&order=id&limit=1000&offset={offset}",
                              headers={"Accept": "text/csv", **headers})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv"), who
        table = list(csv.reader(io.StringIO(response.text)))
        assert table[0] == ["id", "org"], (who, table[:1])
        csv_ids += [int(line[0]) for line in table[1:]]
    exactly(csv_ids, visible, "GET /records as CSV", who)

    # embeds: records under every label, and the many-to-many list of a sample of labels
    labelled = follow(client, headers, "/labels?select=*,records(*)&limit=7", "labels")
    assert sorted(ids_of(labelled)) == sorted(world.links), who  # labels are open to READERS
    for label in labelled:
        embedded = label["records"]
        exactly(ids_of(embedded), world.links[label["id"]] & visible, f"embed records of label {label['id']}", who)
        assert all(row == world.rows[row["id"]] for row in embedded), who
    for label in [1, *rng.sample(sorted(world.links), 3)]:
        expected = world.links[label] & visible
        exactly(ids_of(follow(client, headers, f"/labels/{label}/records?limit=50", "records")), expected,
                f"GET /labels/{label}/records", who)
        assert count_of(client.get(f"/labels/{label}/records?limit=1", headers=counted)) == len(expected), who

    # the PostgREST surface: a bare array, paged with Range; embeds through select=
    rest_ids: list[int] = []
    for start in range(0, len(world.rows), 1000):
        response = client.get("/rest/records?select=id&order=id", headers={"Range": f"{start}-{start + 999}",
                                                                             **headers})
        assert response.status_code in (200, 206), (who, response.text)
        rest_ids += ids_of(response.json())
    exactly(rest_ids, visible, "GET /rest/records", who)
    filtered = client.get("/rest/records?select=id&value=gte.500&limit=1000", headers=headers)
    exactly(ids_of(filtered.json()), high, "GET /rest/records?value=gte.500", who)
    label = rng.choice(sorted(world.links))
    embedded = client.get(f"/rest/labels?id=eq.{label}&select=id,records(id)", headers=headers).json()
    exactly(ids_of(embedded[0]["records"]), world.links[label] & visible, f"GET /rest/labels {label} embed", who)


DATABASES = [pytest.param("postgresql", id="postgresql"), pytest.param("sqlite", id="sqlite")]


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_every_route_family_returns_exactly_the_allowed_rows(make_client: Callable[..., TestClient],
                                                              database_url: str) -> None:
    kind = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    rows, principals, labels = SIZES[kind]
    rng = random.Random(SEED)
    world = build_world(make_client(jwt_secret=SECRET), rng, rows, labels)
    everyone = world.client.get("/records?limit=1", headers={"Prefer": "count=exact"}).json()  # the developer
    assert everyone["count"] == rows
    readers = callers(rng, principals)
    visible_counts = sorted(sum(map(c.sees, world.rows.values())) for c in readers)
    assert visible_counts[0] == 0 and visible_counts[-1] > rows // 2  # the sample spans none to most
    assert len(set(visible_counts)) > principals // 2  # and many different sets
    for caller in readers:
        check_reader(world, caller, random.Random(f"{SEED}-{caller.name}"))


# -- writes -------------------------------------------------------------------------------------------------


def detail(response: Any) -> str:
    return str(response.json().get("detail"))


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_writes_stay_inside_what_the_policy_allows(make_client: Callable[..., TestClient]) -> None:
    rng = random.Random(SEED + 1)
    world = build_world(make_client(jwt_secret=SECRET), rng, 200, 5)
    client, rows = world.client, world.rows

    def stored(id_: int) -> Any:
        response = client.get(f"/records/{id_}")  # the developer sees everything
        return response.json() if response.status_code == 200 else None

    def total() -> int:
        return int(client.get("/records?limit=1", headers={"Prefer": "count=exact"}).json()["count"])

    new = {"id": 5000, "org": "acme", "tenantId": "t1", "tenantGroupId": "g1", "value": 1, "note": "new"}

    # a reader reads but never writes: 403 with the reason, on every write route
    reader = token("reader", ["G_TEAM_READERS"], orgs=ORGS, tenantIds=TENANTS, tenantGroupIds=GROUPS)
    some = next(iter(rows))
    for method, path, body in [("POST", "/records", new), ("PATCH", f"/records/{some}", {"value": 7}),
                               ("DELETE", f"/records/{some}", None), ("PUT", "/labels/1/records", [some]),
                               ("POST", "/rest/records", new)]:
        response = client.request(method, path, json=body, headers=reader)
        assert response.status_code == 403, (method, path, response.text)
        message = response.text if path.startswith("/rest") else detail(response)
        assert "may only read" in message and "OWNER" in message, (method, path, message)
    assert stored(some) == rows[some] and stored(5000) is None and total() == len(rows)

    # a team outside: 403 with the reason, reads and writes alike
    outsider = token("stranger", ["G_TEAM_OUTSIDERS"], orgs=ORGS, tenantIds=TENANTS)
    for method, path in [("GET", "/records"), ("GET", f"/records/{some}"), ("POST", "/records/query"),
                         ("GET", "/labels"), ("GET", "/labels/1/records"), ("POST", "/records")]:
        response = client.request(method, path, json=new if method == "POST" else None, headers=outsider)
        assert response.status_code == 403, (method, path, response.text)
        assert "not in that team" in detail(response) and "OWNER" in detail(response), detail(response)
    assert client.get("/rest/records", headers=outsider).status_code == 403

    # an OWNER member in a multiTenant product is bounded by the strictest serving (TENANT): acme, tenant t1
    owner_claims = {"orgs": ["acme"], "tenantIds": ["t1"]}
    owner = token("owner", ["G_TEAM_OWNER"], **owner_claims)
    bound = Caller("owner", owner, frozenset({"acme"}), frozenset({"t1"}), frozenset())
    inside = sorted(id_ for id_, row in rows.items() if bound.sees(row))
    outside = sorted(id_ for id_, row in rows.items() if not bound.sees(row))
    assert inside and outside
    exactly(ids_of(follow(client, owner, "/records?limit=1000", "records")), inside, "owner's GET /records", "owner")

    for values, why in [({"org": "globex"}, "not one of your organisations"),
                        ({"org": "initech", "tenantId": UNRESTRICTED}, "not one of your organisations"),
                        ({"tenantId": "t2", "tenantGroupId": "g2"}, "not one of your tenants")]:
        response = client.post("/records", json={**new, **values}, headers=owner)
        assert response.status_code == 403 and why in detail(response), (values, response.text)
        response = client.post("/records", json=[{**new, "id": 5001}, {**new, **values}], headers=owner)
        assert response.status_code == 403 and why in detail(response), (values, response.text)
        target = inside[0]
        response = client.patch(f"/records/{target}", json=values, headers=owner)
        assert response.status_code == 403 and why in detail(response), (values, response.text)
        assert stored(target) == rows[target]
    assert stored(5000) is None and stored(5001) is None and total() == len(rows)

    # rows outside its scope: PATCH and DELETE are 404 and change nothing, on both surfaces
    for id_ in outside[:10]:
        assert client.patch(f"/records/{id_}", json={"value": -1}, headers=owner).status_code == 404
        assert client.delete(f"/records/{id_}", headers=owner).status_code == 404
        rest = client.patch(f"/rest/records?id=eq.{id_}", json={"value": -1},
                            headers={"Prefer": "return=representation", **owner})
        assert rest.status_code == 200 and rest.json() == [], rest.text
        rest = client.delete(f"/rest/records?id=eq.{id_}", headers={"Prefer": "return=representation", **owner})
        assert rest.status_code == 200 and rest.json() == [], rest.text
        assert stored(id_) == rows[id_]
    assert total() == len(rows)

    # inside its scope it writes: create, update, delete
    assert client.post("/records", json=new, headers=owner).status_code == 201
    assert client.post("/records", json={**new, "id": 5002, "org": "acme", "tenantId": UNRESTRICTED},
                       headers=owner).status_code == 201
    target = inside[0]
    assert client.patch(f"/records/{target}", json={"value": 4242}, headers=owner).status_code == 200
    assert stored(target) == {**rows[target], "value": 4242}
    assert client.delete(f"/records/{inside[1]}", headers=owner).status_code == 204
    assert stored(inside[1]) is None and total() == len(rows) + 1


# -- writes that once reached rows outside the writer's scope (found by this file, fixed since) -----------------


def owner_world(make_client: Callable[..., TestClient]) -> tuple[World, dict[str, str], list[int], list[int]]:
    world = build_world(make_client(jwt_secret=SECRET), random.Random(SEED + 2), 60, 3)
    owner = token("owner", ["G_TEAM_OWNER"], orgs=["acme"], tenantIds=["t1"])
    bound = Caller("owner", owner, frozenset({"acme"}), frozenset({"t1"}), frozenset())
    inside = sorted(id_ for id_, row in world.rows.items() if bound.sees(row))
    outside = sorted(id_ for id_, row in world.rows.items() if not bound.sees(row))
    return world, owner, inside, outside


@pytest.mark.parametrize("surface", ["native", "rest"])
@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_an_upsert_cannot_take_over_a_row_outside_the_writers_scope(make_client: Callable[..., TestClient],
                                                                    surface: str) -> None:
    world, owner, _, outside = owner_world(make_client)
    victim = outside[0]
    mine = {"id": victim, "org": "acme", "tenantId": "t1", "tenantGroupId": None, "value": 1, "note": "taken"}
    if surface == "native":
        response = world.client.post("/records", json=mine,
                                     headers={"Prefer": "resolution=merge-duplicates", **owner})
    else:
        response = world.client.post("/rest/records?on_conflict=id", json=mine,
                                     headers={"Prefer": "resolution=merge-duplicates", **owner})
    assert world.client.get(f"/records/{victim}").json() == world.rows[victim], response.text
    assert response.status_code in (403, 404, 409), response.text


@pytest.mark.parametrize("database_url", DATABASES, indirect=True)
def test_linking_a_row_outside_the_scope_is_like_linking_a_missing_one(make_client: Callable[..., TestClient]
                                                                       ) -> None:
    world, owner, inside, outside = owner_world(make_client)
    missing = world.client.put("/labels/2/records", json=[inside[0], 10_000], headers=owner)
    assert missing.status_code == 400, missing.text
    hidden = world.client.put("/labels/2/records", json=[inside[0], outside[0]], headers=owner)
    linked = {row["id"] for row in world.client.get("/labels/2/records?limit=1000").json()["records"]}
    assert linked == world.links[2], hidden.text
    assert hidden.status_code == missing.status_code, hidden.text
