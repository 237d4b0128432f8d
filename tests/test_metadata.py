"""The metadata graph's routes on SQLite and PostgreSQL, as a DataHub client sees them: upserts and versions,
create-only writes, latest reads, batchGet of older versions, conditional writes, soft and hard deletes,
keyed JSON Patch, relationships, the timeline, bad input named by a JSON pointer, and who may do what."""

from __future__ import annotations

from typing import Any

from tests import test_metadata_support as support
from tests.test_metadata_support import batch_get, dataset, latest, upsert
from tests.test_products_support import Actor

graph = support.graph  # the fixture

HIVE = dataset("users", "hive")  # a dataset of another platform: not governed by a data product
PATIENT = dataset("patient")
PROBLEM = "application/problem+json"


def props(description: str) -> dict[str, Any]:
    return {"__type": "DatasetProperties", "description": description, "customProperties": {"encoding": "utf-8"}}


def test_upsert_keeps_every_version(graph: Actor) -> None:
    assert upsert(graph, HIVE, props("first")).json() == [HIVE]
    upsert(graph, HIVE, props("second"))
    aspect = latest(graph, HIVE, aspectNames="datasetProperties")[HIVE]["aspects"]["datasetProperties"]
    assert aspect["version"] == 2 and aspect["value"]["__type"] == "DatasetProperties"
    assert aspect["value"]["description"] == "second" and aspect["created"]["actor"] == "urn:li:corpuser:jessie"
    assert latest(graph, HIVE)[HIVE]["entityName"] == "dataset"
    # batchGet: the latest by default, an older version by If-Version-Match, versions with systemMetadata=true
    [now] = batch_get(graph, "dataset", [{"urn": HIVE, "datasetProperties": {}}], systemMetadata="true")
    assert now["datasetProperties"]["value"]["description"] == "second"
    assert now["datasetProperties"]["systemMetadata"]["version"] == "2"
    assert now["datasetProperties"]["systemMetadata"]["runId"] == "no-run-id-provided"
    assert now["datasetProperties"]["systemMetadata"]["lastObserved"] > 1_700_000_000_000  # epoch ms
    [old] = batch_get(graph, "dataset", [{"urn": HIVE, "datasetProperties": {"headers": {"If-Version-Match": "1"}}}])
    assert old == {"urn": HIVE, "datasetProperties": {"value": {"description": "first",
                                                                 "customProperties": {"encoding": "utf-8"}}}}
    [plain] = batch_get(graph, "dataset", [{"urn": HIVE}])  # no aspect named: all of them, no systemMetadata
    assert set(plain) == {"urn", "datasetProperties"} and "systemMetadata" not in plain["datasetProperties"]


def test_batch_get_answers_the_named_aspects_of_the_entities_that_exist(graph: Actor) -> None:
    orders, missing = dataset("orders", "hive"), dataset("nowhere", "hive")
    tags = {"__type": "GlobalTags", "tags": [{"tag": "urn:li:tag:pii"}]}
    owners = {"__type": "Ownership", "owners": [{"owner": "urn:li:corpuser:ann", "type": "DATAOWNER"}]}
    upsert(graph, HIVE, props("users"))
    upsert(graph, HIVE, tags)
    upsert(graph, orders, owners)
    upsert(graph, orders, {"__type": "DatasetProperties", "customProperties": {}, "rows": 12345678901234567890})
    found = batch_get(graph, "dataset", [{"urn": HIVE, "globalTags": {}}, {"urn": missing, "ownership": {}},
                                         {"urn": orders, "ownership": {}, "globalTags": {}, "datasetProperties": {}}])
    assert found == [  # in the order asked; an entity without the aspect has no member; an unknown one no item
        {"urn": HIVE, "globalTags": {"value": {"tags": [{"tag": "urn:li:tag:pii"}]}}},
        {"urn": orders, "ownership": {"value": {"owners": [{"owner": "urn:li:corpuser:ann", "type": "DATAOWNER"}]}},
         "datasetProperties": {"value": {"customProperties": {}, "rows": 12345678901234567890}}}]  # exact


def test_create_if_not_exists_refuses_an_existing_entity(graph: Actor) -> None:
    upsert(graph, HIVE, props("original"), params={"createEntityIfNotExists": "true"})
    refused = upsert(graph, HIVE, props("overwrite"), status=422, params={"createEntityIfNotExists": "true"})
    assert "entity key already exists" in refused.json()["detail"]
    aspect = latest(graph, HIVE)[HIVE]["aspects"]["datasetProperties"]
    assert (aspect["version"], aspect["value"]["description"]) == (1, "original")  # nothing was written


def test_conditional_writes(graph: Actor) -> None:
    upsert(graph, HIVE, props("v1"))
    stale = upsert(graph, HIVE, props("lost"), status=412, headers={"If-Version-Match": "2"})
    assert "If-Version-Match: 2" in stale.json()["detail"] and "version 1" in stale.json()["detail"]
    upsert(graph, HIVE, props("v2"), headers={"If-Version-Match": "1"})
    # the condition in the body item, beside the aspect (the seed's batch form)
    upsert(graph, HIVE, props("lost"), status=412, item={"headers": {"If-Version-Match": "1"}})
    upsert(graph, HIVE, props("v3"), item={"headers": {"If-Version-Match": "2"}})
    upsert(graph, HIVE, props("lost"), status=412, headers={"If-None-Match": "*"})  # exists: create-only fails
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": []}, headers={"If-None-Match": "*"})
    aspects = latest(graph, HIVE)[HIVE]["aspects"]
    assert (aspects["datasetProperties"]["version"], aspects["datasetProperties"]["value"]["description"]) == (3, "v3")
    assert aspects["globalTags"]["version"] == 1


def test_a_failing_item_writes_nothing_of_the_batch(graph: Actor) -> None:
    upsert(graph, HIVE, props("v1"))
    other = dataset("orders", "hive")
    response = graph.post("/openapi/entities/v1/", json=[
        {"entityType": "dataset", "entityUrn": other, "aspect": props("new")},
        {"entityType": "dataset", "entityUrn": HIVE, "aspect": props("x"), "headers": {"If-Version-Match": "7"}}])
    assert response.status_code == 412
    assert latest(graph, other) == {} and latest(graph, HIVE)[HIVE]["aspects"]["datasetProperties"]["version"] == 1


def test_soft_delete_hides_and_hard_delete_removes(graph: Actor) -> None:
    upsert(graph, HIVE, props("doomed"))
    upsert(graph, HIVE, {"__type": "Ownership", "owners": [{"owner": "urn:li:corpGroup:ROCKET", "type": "DATAOWNER"}]})
    deleted = graph.delete("/openapi/entities/v1/", params={"urns": HIVE})  # soft is the default
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == [{"rowsRolledBack": [{"urn": HIVE}], "rowsDeletedFromEntityDeletion": 0}]
    assert latest(graph, HIVE) == {} and batch_get(graph, "dataset", [{"urn": HIVE}]) == []
    shown = latest(graph, HIVE, includeSoftDeleted="true")[HIVE]["aspects"]
    assert shown["status"]["value"] == {"__type": "Status", "removed": True}
    owned = graph.get("/openapi/relationships/v1/", params={"urn": "urn:li:corpGroup:ROCKET",
                                                            "direction": "INCOMING", "relationshipTypes": "OwnedBy"})
    assert HIVE not in [e["urn"] for e in owned.json()["entities"]]  # links of a removed entity are hidden
    hard = graph.delete("/openapi/entities/v1/", params={"urns": HIVE, "soft": "false"})
    assert hard.status_code == 200 and hard.json()[0]["rowsDeletedFromEntityDeletion"] > 0
    assert latest(graph, HIVE, includeSoftDeleted="true") == {}
    assert batch_get(graph, "dataset", [{"urn": HIVE, "datasetProperties": {"headers": {"If-Version-Match": "1"}}}],
                     includeSoftDeleted="true") == []
    assert graph.get(f"/openapi/v2/timeline/v1/{HIVE}").status_code == 404  # its versions are gone
    owned = graph.get("/openapi/relationships/v1/", params={"urn": "urn:li:corpGroup:ROCKET", "direction": "INCOMING",
                                                            "includeSoftDeleted": "true"})
    assert HIVE not in [e["urn"] for e in owned.json()["entities"]]
    assert graph.delete("/openapi/entities/v1/", params={"urns": HIVE}).status_code == 404


SEED_TAG = {"tag": "urn:li:tag:tag1", "attribution": {"source": "urn:li:platformResource:source1",
                                                      "actor": "urn:li:corpuser:user", "time": 0}}


def tagged(tag: str, source: str, time: int = 0) -> dict[str, Any]:
    return {"tag": tag, "attribution": {"source": source, "actor": "urn:li:corpuser:user", "time": time}}


def patch(graph: Actor, urn: str, aspect: str, body: Any, as_: str = "rocket", **kwargs: Any) -> Any:
    return graph.patch(f"/openapi/v3/entity/{urn.split(':')[2]}/{urn}/{aspect}", as_=as_, json=body, **kwargs)


KEYS = {"tags": ["attribution␟source", "tag"]}


def test_keyed_patch_adds_replaces_and_removes_by_key(graph: Actor) -> None:
    s1, s2 = "urn:li:platformResource:source1", "urn:li:platformResource:source2"
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": [tagged("urn:li:tag:tag1", s1), tagged("urn:li:tag:tag1", s2),
                                                         tagged("urn:li:tag:tag2", s1)]})
    response = patch(graph, HIVE, "globalTags", {"arrayPrimaryKeys": KEYS, "patch": [
        {"op": "add", "path": f"/tags/{s1}/urn:li:tag:tag1", "value": tagged("urn:li:tag:tag1", s1, 99)},  # replaces
        {"op": "add", "path": f"/tags/{s2}/urn:li:tag:tag3", "value": tagged("urn:li:tag:tag3", s2)},  # appends
        {"op": "remove", "path": f"/tags/{s1}/urn:li:tag:tag2"},  # only the element with both keys
    ]})
    assert response.status_code == 200, response.text
    tags = response.json()["globalTags"]["value"]["tags"]
    assert [(t["tag"], t["attribution"]["source"], t["attribution"]["time"]) for t in tags] == [
        ("urn:li:tag:tag1", s1, 99), ("urn:li:tag:tag1", s2, 0), ("urn:li:tag:tag3", s2, 0)]
    assert response.json()["globalTags"]["systemMetadata"]["version"] == "2"
    # a keyed path into a missing aspect creates it; standard RFC 6902 operations work beside keyed ones
    created = patch(graph, HIVE, "datasetProperties", {"patch": [{"op": "add", "path": "/description", "value": "d"}]})
    assert created.status_code == 200 and created.json()["datasetProperties"]["value"] == {"description": "d"}


def test_a_patch_that_does_not_apply_changes_nothing(graph: Actor) -> None:
    upsert(graph, HIVE, props("kept"))
    response = patch(graph, HIVE, "datasetProperties", {"patch": [
        {"op": "replace", "path": "/description", "value": "changed"},
        {"op": "replace", "path": "/customProperties/missing/deeper", "value": 1}]})
    assert response.status_code == 400 and response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["pointer"] == "/patch/1"
    assert "/customProperties/missing/deeper" in response.json()["errors"][0]["message"]
    aspect = latest(graph, HIVE)[HIVE]["aspects"]["datasetProperties"]
    assert (aspect["version"], aspect["value"]["description"]) == (1, "kept")  # atomic: the first op is undone
    stale = patch(graph, HIVE, "datasetProperties", [{"op": "add", "path": "/description", "value": "x"}],
                  headers={"If-Version-Match": "5"})
    assert stale.status_code == 412


def test_bad_input_is_named_by_a_pointer(graph: Actor) -> None:
    cases = [  # (method, path, params, body, pointer)
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "dataset", "entityUrn": "urn:li:dataset:nope",
                                                "aspect": props("x")}], "/0/entityUrn"),
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "dataset", "entityUrn": HIVE, "aspect": props("x")},
                                               {"entityType": "dataset", "entityUrn": HIVE,
                                                "aspect": {"__type": "CorpUserInfo"}}], "/1/aspect/__type"),
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "corpuser", "entityUrn": HIVE, "aspect": props("x")}],
         "/0/entityUrn"),  # a dataset URN given as a corpuser
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "dataset", "entityUrn": HIVE, "aspect": props("x"),
                                                "headers": {"If-Version-Match": "latest"}}],
         "/0/headers/If-Version-Match"),
        ("get", "/openapi/entities/v1/latest", {"urns": [HIVE, "urn:li:dataset:(urn:li:dataPlatform:x,y,NOWHERE)"]},
         None, "/query/urns/1"),
        ("get", "/openapi/entities/v1/latest", {"urns": HIVE, "aspectNames": "datasetProperties,colour"}, None,
         "/query/aspectNames/1"),
        ("post", "/openapi/v3/entity/dataset/batchGet", {}, [{"urn": HIVE, "flavour": {}}], "/0/flavour"),
        # NUL, which PostgreSQL cannot store in text, in a URN, a runId, a relationship's destination
        ("post", "/openapi/v3/entity/corpuser/batchGet", {}, [{"urn": "urn:li:corpuser:a\u0000b"}], "/0/urn"),
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "corpuser", "entityUrn": "urn:li:corpuser:a\u0000b",
                                                "aspect": {"__type": "GlobalTags", "tags": []}}], "/0/entityUrn"),
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "dataset", "entityUrn": HIVE, "aspect": props("x"),
                                                "systemMetadata": {"runId": "run\u0000"}}], "/0/systemMetadata/runId"),
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "dataset", "entityUrn": HIVE, "aspect": {
            "__type": "Ownership", "owners": [{"owner": "urn:li:corpuser:a\u0000b"}]}}], "/0/aspect"),
        ("patch", f"/openapi/v3/entity/dataset/{HIVE}/ownership", {}, {"patch": [
            {"op": "add", "path": "/owners", "value": [{"owner": "urn:li:corpuser:\u0000"}]}]}, "/patch"),
        ("post", "/openapi/v3/entity/dataset/batchGet", {}, [{"urn": HIVE, "globalTags": {"headers": {
            "If-Version-Match": "99999999999999999999999"}}}], "/0/globalTags/headers/If-Version-Match"),  # no such
        ("post", "/openapi/entities/v1/", {}, [{"entityType": "dataset", "entityUrn": HIVE, "aspect": props("x"),
                                                "headers": {"If-Version-Match": "\u00b2"}}],  # a digit, not ASCII
         "/0/headers/If-Version-Match"),
        ("patch", f"/openapi/v3/entity/dataset/{HIVE}/colour", {}, {"patch": []}, "/path/aspect"),
        ("patch", f"/openapi/v3/entity/dataset/{HIVE}/globalTags", {}, {"patch": [{"op": "jump", "path": "/x"}]},
         "/patch/0"),
        ("get", "/openapi/relationships/v1/", {"urn": HIVE, "direction": "SIDEWAYS"}, None, "/query/direction"),
        ("get", "/openapi/v2/timeline/v1/urn:li:corpuser:a b", {}, None, "/path/urn"),
        ("get", f"/openapi/v2/timeline/v1/{HIVE}", {"categories": "TAG,GOSSIP"}, None, "/query/categories/1"),
    ]  # fmt: skip
    for method, path, params, body, pointer in cases:
        call = getattr(graph, method)
        response = call(path, params=params, json=body) if body is not None else call(path, params=params)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert pointer in [e["pointer"] for e in response.json()["errors"]], (pointer, response.json())
    for raw in (b"[" * 1020 + b"12345678901234567890" + b"]" * 1020,  # deep, and a 20-digit integer (read by json)
                b"[" * 5000 + b"]" * 5000, b'[{"urn": "\xff"}]', b"[NaN]"):
        response = graph.post("/openapi/v3/entity/dataset/batchGet", content=raw,
                              headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.headers["content-type"] == PROBLEM, response.text
    assert latest(graph, HIVE) == {}  # nothing was written by any of them


def test_relationships_follow_aspects_and_page(graph: Actor) -> None:
    for index in range(3):
        urn = dataset(f"t{index}", "hive")
        upsert(graph, urn, {"__type": "Ownership", "owners": [{"owner": "urn:li:corpGroup:AQUA", "type": "DATAOWNER"},
                                                             {"owner": "urn:li:corpuser:jessie", "type": "DATAOWNER"}]})
    upsert(graph, dataset("t0", "hive"), {"__type": "UpstreamLineage", "upstreams": [{"dataset": HIVE,
                                                                                      "type": "TRANSFORMED"}]})
    query = {"urn": "urn:li:corpGroup:AQUA", "relationshipTypes": "OwnedBy", "direction": "INCOMING"}
    first = graph.get("/openapi/relationships/v1/", params={**query, "start": 0, "count": 2}).json()
    assert (first["start"], first["count"], first["total"]) == (0, 2, 3)
    rest = graph.get("/openapi/relationships/v1/", params={**query, "start": 2, "count": 2}).json()
    assert [e["urn"] for e in first["entities"] + rest["entities"]] == [dataset(f"t{i}", "hive") for i in range(3)]
    assert all(e["relationshipType"] == "OwnedBy" for e in first["entities"])
    out = graph.get("/openapi/relationships/v1/", params={"urn": dataset("t0", "hive"), "direction": "OUTGOING"})
    assert out.json()["entities"] == [{"relationshipType": "DownstreamOf", "urn": HIVE},
                                      {"relationshipType": "OwnedBy", "urn": "urn:li:corpGroup:AQUA"},
                                      {"relationshipType": "OwnedBy", "urn": "urn:li:corpuser:jessie"}]
    # replacing the aspect replaces the links it implies
    upsert(graph, dataset("t0", "hive"), {"__type": "Ownership", "owners": []})
    assert graph.get("/openapi/relationships/v1/", params={**query, "count": 10}).json()["total"] == 2
    generated = graph.get("/openapi/relationships/v1/", params={**query, "urn": "urn:li:corpGroup:ROCKET"}).json()
    assert [e["urn"] for e in generated["entities"]] == [PATIENT, dataset("visit")]  # the generator's ownership
    # the generator's product contains its datasets (OUTGOING from the product)
    contains = graph.get("/openapi/relationships/v1/", params={"urn": "urn:li:dataProduct:clinic",
                                                               "relationshipTypes": "Contains"}).json()
    assert contains["entities"] == [{"relationshipType": "Contains", "urn": PATIENT},
                                    {"relationshipType": "Contains", "urn": dataset("visit")}]


def test_timeline_lists_changes_between_versions(graph: Actor) -> None:
    upsert(graph, HIVE, props("first words"))
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": [{"tag": "urn:li:tag:pii"}]})
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": [{"tag": "urn:li:tag:gold"}]})
    upsert(graph, HIVE, {"__type": "Ownership", "owners": [{"owner": "urn:li:corpGroup:ROCKET", "type": "DATAOWNER"}]})
    upsert(graph, HIVE, {"__type": "Ownership", "owners": [{"owner": "urn:li:corpGroup:AQUA", "type": "DATAOWNER"}]})
    upsert(graph, HIVE, props("better words"))
    response = graph.get(f"/openapi/v2/timeline/v1/{HIVE}", params={"categories": "TAG,OWNER,DOCUMENTATION"})
    assert response.status_code == 200, response.text
    transactions = response.json()
    events = [(e["category"], e["operation"], e["modifier"]) for t in transactions for e in t["changeEvents"]]
    assert events == [
        ("DOCUMENTATION", "ADD", HIVE), ("TAG", "ADD", "urn:li:tag:pii"),
        ("TAG", "ADD", "urn:li:tag:gold"), ("TAG", "REMOVE", "urn:li:tag:pii"),
        ("OWNER", "ADD", "urn:li:corpGroup:ROCKET"),
        ("OWNER", "ADD", "urn:li:corpGroup:AQUA"), ("OWNER", "REMOVE", "urn:li:corpGroup:ROCKET"),
        ("DOCUMENTATION", "MODIFY", HIVE)]
    assert "'first words' to 'better words'" in transactions[-1]["changeEvents"][0]["description"]
    assert all(t["actor"] == "urn:li:corpuser:jessie" for t in transactions)
    stamps = [t["timestamp"] for t in transactions]
    assert stamps == sorted(stamps) and stamps[0] > 1_700_000_000_000
    tags_only = graph.get(f"/openapi/v2/timeline/v1/{HIVE}", params={"categories": "TAG"}).json()
    assert [len(t["changeEvents"]) for t in tags_only] == [1, 2]
    later = graph.get(f"/openapi/v2/timeline/v1/{HIVE}", params={"startTime": stamps[-1], "endTime": stamps[-1]})
    assert [t["changeEvents"][0]["operation"] for t in later.json()] == ["MODIFY"]


def test_timeline_reads_aspects_of_any_shape(graph: Actor) -> None:
    # aspects are the writers' JSON: members of unexpected types are stored, and the timeline skips them
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": 1})
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": [{"tag": "urn:li:tag:pii"}, "gold", {"tag": 2}]})
    upsert(graph, HIVE, {"__type": "Ownership", "owners": {"owner": "urn:li:corpuser:ann"}})
    upsert(graph, HIVE, {"__type": "SchemaMetadata", "fields": [{"fieldPath": "id", "type": {"type": "number"}},
                                                                 {"fieldPath": "name", "type": 7}, "loose"]})
    response = graph.get(f"/openapi/v2/timeline/v1/{HIVE}")
    assert response.status_code == 200, response.text
    events = [(e["category"], e["operation"], e["modifier"]) for t in response.json() for e in t["changeEvents"]]
    assert events == [("TAG", "ADD", "urn:li:tag:pii"),
                      ("TECHNICAL_SCHEMA", "ADD", f"urn:li:schemaField:({HIVE},id)"),
                      ("TECHNICAL_SCHEMA", "ADD", f"urn:li:schemaField:({HIVE},name)")]


def test_who_may_write_and_read(graph: Actor) -> None:
    product = "urn:li:dataProduct:clinic"
    description = {"__type": "DataProductProperties", "description": "Clinic data"}
    refused = upsert(graph, product, description, as_="galactic", status=403)
    assert "Only team ROCKET (the owner of data product clinic)" in refused.json()["detail"]
    upsert(graph, PATIENT, props("x"), as_="galactic", status=403)  # a dataset of the product: the same owner
    upsert(graph, PATIENT, props("x"), as_="rocket-key", status=403)  # team keys only read
    upsert(graph, PATIENT, props("x"), as_="anonymous", status=401)
    upsert(graph, PATIENT, props("Patients of the clinic"))  # the owner team writes
    upsert(graph, product, description, as_="admin")
    upsert(graph, HIVE, props("anyone's"), as_="galactic")  # not governed by a product
    upsert(graph, "urn:li:corpGroup:ROCKET", {"__type": "CorpGroupInfo", "displayName": "R"}, as_="galactic",
           status=403)
    # reads follow the product's grants
    denied = graph.get("/openapi/entities/v1/latest", as_="galactic", params={"urns": PATIENT})
    assert denied.status_code == 403 and "not in that team" in denied.json()["detail"]
    for path in (f"/openapi/v2/timeline/v1/{PATIENT}", "/openapi/relationships/v1/"):
        assert graph.get(path, as_="galactic", params={"urn": product}).status_code == 403
    assert latest(graph, PATIENT, as_="rocket-key")[PATIENT]["aspects"]["datasetProperties"]["version"] == 1
    serving = {"servingName": "web", "servingType": "api", "url": "/patient"}
    assert graph.post("/data-products/clinic/servings", json=serving).status_code == 201
    grant = {"grantee": "GALACTIC", "servings": ["web"]}
    assert graph.put("/data-products/clinic/access", json=grant).status_code == 200
    assert latest(graph, PATIENT, as_="galactic")[PATIENT]["aspects"]["datasetProperties"]["version"] == 1
    assert batch_get(graph, "dataProduct", [{"urn": product}], as_="galactic")[0]["dataProductProperties"]
    upsert(graph, PATIENT, props("granted teams only read"), as_="galactic", status=403)


def test_generated_schema_is_read_only(graph: Actor) -> None:
    for as_ in ("rocket", "admin"):
        refused = upsert(graph, PATIENT, {"__type": "SchemaMetadata", "fields": []}, as_=as_, status=409)
        assert "written by the generator" in refused.json()["detail"]
        assert "/generator" in refused.json()["detail"]
        patched = patch(graph, PATIENT, "schemaMetadata", [{"op": "remove", "path": "/fields/0"}], as_=as_)
        assert patched.status_code == 409
    hard = graph.delete("/openapi/entities/v1/", params={"urns": PATIENT, "soft": "false"})
    assert hard.status_code == 409 and "drop the table" in hard.json()["detail"]
    assert latest(graph, PATIENT)[PATIENT]["aspects"]["schemaMetadata"]["version"] == 1
    # schemaMetadata of a dataset the generator does not publish is the writer's
    upsert(graph, HIVE, {"__type": "SchemaMetadata", "schemaName": "users", "fields": []})


def test_the_routes_are_documented_and_unknown_ones_are_problems(graph: Actor) -> None:
    document = graph.get("/openapi/v3/api-docs").json()
    assert {"/openapi/entities/v1/", "/openapi/v3/entity/{entityName}/batchGet",
            "/openapi/v2/timeline/v1/{urn}"} <= set(document["paths"])
    ui = graph.get("/openapi/swagger-ui/")
    assert ui.status_code == 200 and "/openapi/v3/api-docs" in ui.text
    admin_ui = graph.get("/admin/ui/")  # the admin Swagger UI offers this document beside its own
    assert admin_ui.status_code == 200
    assert '{"name": "Metadata graph", "url": "/openapi/v3/api-docs"}' in admin_ui.text, admin_ui.text
    assert '{"name": "Admin API", "url": "/admin/openapi.json"}' in admin_ui.text
    example = document["paths"]["/openapi/v3/entity/{entityName}/batchGet"]["post"]["requestBody"]["content"][
        "application/json"]["example"]  # what Swagger UI's Try it out sends unedited: the dataset of `people`
    assert example[0]["urn"] == "urn:li:dataset:(urn:li:dataPlatform:drg,people,PROD)"
    missing = graph.get("/openapi/entities/v2/")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    wrong = graph.put("/openapi/entities/v1/", json=[])
    assert wrong.status_code == 405 and sorted(wrong.headers["allow"].split(", ")) == ["DELETE", "POST"]
    assert graph.get("/openapi.json").status_code == 200  # the generated API's document is not ours
