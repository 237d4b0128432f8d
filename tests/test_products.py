"""Data products on the admin app, on SQLite and PostgreSQL: products, sources, pipelines, servings, grants,
IAM policy documents, and the audit log; every route's success and error codes, refusals with their reasons."""

from __future__ import annotations

from typing import Any

import pytest

from tests import test_products_support as support
from tests.test_products_support import S3_SERVINGS, Actor, make_product

api = support.api  # the fixture

PROBLEM = "application/problem+json"


def test_put_creates_then_updates_and_reads(api: Actor) -> None:
    created = make_product(api, description="first", multiTenant=True)
    assert (created["dataProductName"], created["owner"], created["multiTenant"]) == ("it", "ROCKET", True)
    updated = api.put("/data-products/it", json={"description": "second"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["description"], updated.json()["owner"]) == ("second", "ROCKET")
    assert api.get("/data-products/it", as_="galactic").json()["description"] == "second"
    listed = api.get("/data-products", as_="galactic").json()["dataProducts"]
    assert [p["dataProductName"] for p in listed] == ["it"]


def test_owner_defaults_to_the_callers_only_team(api: Actor) -> None:
    response = api.put("/data-products/mine", json={})
    assert response.status_code == 201 and response.json()["owner"] == "ROCKET"
    ambiguous = api.put("/data-products/theirs", as_="both", json={})
    assert ambiguous.status_code == 400 and ambiguous.json()["errors"][0]["pointer"] == "/owner"


@pytest.mark.parametrize(("as_", "body", "status", "reason"), [
    ("anonymous", {"owner": "ROCKET"}, 401, "authenticated"),
    ("galactic", {"owner": "ROCKET"}, 403, "not a member of ROCKET"),  # cannot create for another team
    ("rocket-key", {"owner": "ROCKET"}, 403, "read-only"),  # team keys never write
    ("admin", {"owner": "ROCKET"}, 201, None),  # an admin creates for any team
])
def test_who_may_create(api: Actor, as_: str, body: dict[str, Any], status: int, reason: str | None) -> None:
    response = api.put("/data-products/it", as_=as_, json=body)
    assert response.status_code == status, response.text
    if reason:
        assert response.headers["content-type"] == PROBLEM and reason in response.json()["detail"]


def test_only_owner_or_admin_changes_a_product(api: Actor) -> None:
    make_product(api)
    refused = api.put("/data-products/it", as_="galactic", json={"description": "mine now"})
    assert refused.status_code == 403
    assert "Only team ROCKET (the owner of data product 'it')" in refused.json()["detail"]
    handover = api.put("/data-products/it", as_="rocket", json={"owner": "GALACTIC"})
    assert handover.status_code == 403 and "not a member of GALACTIC" in handover.json()["detail"]
    assert api.put("/data-products/it", as_="admin", json={"owner": "GALACTIC"}).json()["owner"] == "GALACTIC"
    assert api.put("/data-products/it", as_="galactic", json={"description": "ours"}).status_code == 200


@pytest.mark.parametrize(("body", "pointer"), [
    ({"owner": "bad team!"}, "/owner"),
    ({"multiTenant": "yes"}, "/multiTenant"),
    ({"colour": "red"}, "/colour"),  # unknown fields are named
    ({"organizations": ["U S M"]}, "/organizations/0"),
])
def test_bad_product_bodies_name_the_field(api: Actor, body: dict[str, Any], pointer: str) -> None:
    response = api.put("/data-products/it", json=body)
    assert response.status_code == 400, response.text
    assert pointer in [e["pointer"] for e in response.json()["errors"]]


def test_unknown_product_is_404_everywhere(api: Actor) -> None:
    for method, path, body in [
        ("get", "/data-products/nope", None),
        ("post", "/data-products/nope/sources", {"sourceType": "DATASET", "sourceName": "s"}),
        ("post", "/data-products/nope/pipelines", {"pipelineName": "p", "pipelineType": "AIRFLOW"}),
        ("post", "/data-products/nope/servings", S3_SERVINGS[0]),
        ("put", "/data-products/nope/access", {"grantee": "GALACTIC", "servings": ["open"]}),
        ("delete", "/data-products/nope/access/GALACTIC/open", None),
        ("get", "/data-products/nope/policies/GALACTIC", None),
        ("get", "/data-products/nope/logs", None),
    ]:
        response = getattr(api, method)(path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert "nope" in response.json()["detail"]


def test_sources_and_pipelines_are_added_then_replaced(api: Actor) -> None:
    make_product(api)
    source = {"sourceType": "DATASET", "sourceName": "source_one", "datasetName": "e2e_dataset_one"}
    assert api.post("/data-products/it/sources", json=source).status_code == 201
    assert api.post("/data-products/it/sources", json={**source, "datasetName": "two"}).status_code == 200
    pipeline = {"pipelineName": "e2e-test-dag", "pipelineType": "AIRFLOW", "pipelineId": "123",
                "tasks": [{"taskName": "e2e_metric"}], "slos": {}}
    added = api.post("/data-products/it/pipelines", json=pipeline)
    assert added.status_code == 201 and added.json()["tasks"] == [{"taskName": "e2e_metric"}]
    product = api.get("/data-products/it").json()
    assert product["sources"]["source_one"]["datasetName"] == "two" and "created" in product["sources"]["source_one"]
    assert [p["pipelineName"] for p in product["pipelines"]] == ["e2e-test-dag"]


@pytest.mark.parametrize(("path", "body", "pointer"), [
    ("sources", {"sourceName": "s"}, "/sourceType"),
    ("pipelines", {"pipelineName": "p", "pipelineType": "AIRFLOW", "tasks": [{}]}, "/tasks/0/taskName"),
    ("servings", {"servingName": "s", "servingType": "ftp"}, "/servingType"),
    ("servings", {"servingName": "s", "servingType": "S3", "url": "https://x/y", "schemaUrl": "u"}, "/url"),
    ("servings", {"servingName": "s", "servingType": "S3", "url": "s3://b/p"}, "/schemaUrl"),
    ("servings", {**S3_SERVINGS[0], "accessRestriction": "CITY"}, "/accessRestriction"),
    ("servings", {**S3_SERVINGS[1], "tenancyColumns": {"org": "1bad"}}, "/tenancyColumns/org"),
    ("servings", {**S3_SERVINGS[0], "tenancyColumns": {"org": "o"}}, "/tenancyColumns"),  # unrestricted
    ("servings", {"servingName": "s", "servingType": "api", "url": "/nothing"}, "/url"),
    ("servings", {"servingName": "s", "servingType": "api", "schemaId": "nothing"}, "/schemaId"),
    ("servings", {"servingName": "s", "servingType": "api"}, "/url"),  # names no resource at all
])
def test_bad_part_bodies_name_the_field(api: Actor, path: str, body: dict[str, Any], pointer: str) -> None:
    make_product(api)
    response = api.post(f"/data-products/it/{path}", json=body)
    assert response.status_code == 400, response.text
    assert pointer in [e["pointer"] for e in response.json()["errors"]], response.text


def test_parts_are_the_owners_to_change(api: Actor) -> None:
    make_product(api)
    for path, body in [("sources", {"sourceType": "DATASET", "sourceName": "s"}),
                       ("pipelines", {"pipelineName": "p", "pipelineType": "AIRFLOW"}),
                       ("servings", S3_SERVINGS[0])]:
        assert api.post(f"/data-products/it/{path}", as_="galactic", json=body).status_code == 403
        assert api.post(f"/data-products/it/{path}", as_="anonymous", json=body).status_code == 401
        assert api.post(f"/data-products/it/{path}", as_="admin", json=body).status_code == 201


def test_api_serving_names_a_generated_resource(api: Actor) -> None:
    make_product(api)
    by_url = api.post("/data-products/it/servings", json={"servingName": "web", "servingType": "api",
                                                          "url": "/patient", "accessRestriction": "TENANT"})
    assert by_url.status_code == 201, by_url.text
    by_id = api.post("/data-products/it/servings", json={"servingName": "id", "servingType": "api",
                                                         "schemaId": "patient"})
    assert by_id.status_code == 201
    both = api.post("/data-products/it/servings", json={"servingName": "x", "servingType": "api",
                                                        "url": "/patient", "schemaId": "other"})
    assert both.status_code == 400


def test_a_resource_in_one_product_cannot_be_served_by_another(api: Actor) -> None:
    make_product(api)
    serving = {"servingName": "web", "servingType": "api", "url": "/patient"}
    assert api.post("/data-products/it/servings", json=serving).status_code == 201
    assert api.put("/data-products/other", as_="galactic", json={}).status_code == 201
    taken = api.post("/data-products/other/servings", as_="galactic", json=serving)
    assert taken.status_code == 409 and "'it'" in taken.json()["detail"]


def grant_setup(api: Actor) -> None:
    make_product(api, multiTenant=True, organizations=["USM", "EHS"],
                 kmsKeyArn="arn:aws:kms:us-east-1:643101592424:key/d7d2b274")
    for serving in S3_SERVINGS:
        assert api.post("/data-products/it/servings", json=serving).status_code == 201


def test_grant_and_revoke_both_ways(api: Actor) -> None:
    grant_setup(api)
    granted = api.put("/data-products/it/access", json={"grantee": "GALACTIC",
                                                        "servings": ["orglevel", "tenantlevel", "open"]})
    assert granted.status_code == 200 and granted.json()["access"] == {"GALACTIC": ["open", "orglevel",
                                                                                   "tenantlevel"]}
    again = api.put("/data-products/it/access", json={"grantee": "GALACTIC", "servings": ["open"]})
    assert again.status_code == 200  # granting twice changes nothing
    revoked = api.delete("/data-products/it/access", json={"grantee": "GALACTIC",
                                                            "servings": ["open"]})
    assert revoked.status_code == 200 and revoked.json()["access"] == {"GALACTIC": ["orglevel", "tenantlevel"]}
    assert api.delete("/data-products/it/access/GALACTIC/orglevel").status_code == 204
    assert api.delete("/data-products/it/access/GALACTIC/orglevel").status_code == 404  # no longer granted
    assert api.get("/data-products/it").json()["access"] == {"GALACTIC": ["tenantlevel"]}


@pytest.mark.parametrize(("as_", "body", "status"), [
    ("galactic", {"grantee": "GALACTIC", "servings": ["open"]}, 403),  # no granting oneself
    ("anonymous", {"grantee": "GALACTIC", "servings": ["open"]}, 401),
    ("rocket", {"grantee": "GALACTIC", "servings": ["missing"]}, 400),  # unknown serving
    ("rocket", {"grantee": "GALACTIC", "servings": []}, 400),
    ("rocket", {"grantee": "GALACTIC"}, 400),
    ("admin", {"grantee": "GALACTIC", "servings": ["open"]}, 200),
])
def test_grant_refusals(api: Actor, as_: str, body: dict[str, Any], status: int) -> None:
    grant_setup(api)
    response = api.put("/data-products/it/access", as_=as_, json=body)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["errors"][0]["pointer"].startswith("/servings")


def test_policy_follows_the_seeds_pattern(api: Actor) -> None:
    grant_setup(api)
    api.put("/data-products/it/access", json={"grantee": "GALACTIC", "servings": ["orglevel", "tenantlevel"]})
    policy = api.get("/data-products/it/policies/GALACTIC", as_="galactic").json()
    assert policy["Version"] == "2012-10-17"
    reads = [s for s in policy["Statement"] if s["Action"] == "s3:GetObject*"]
    assert reads[0] == {"Action": "s3:GetObject*", "Effect": "Allow",
                        "Resource": ["arn:aws:s3:::cds-data-product-dev/it/orglevel/*"],
                        "Condition": {"StringLike": {"aws:PrincipalTag/orgs": "*:${s3:ExistingObjectTag/org}:*"}}}
    tenant_conditions = [s["Condition"]["StringLike"] for s in reads[1:]]
    assert tenant_conditions == [
        {"aws:PrincipalTag/orgs": "*:${s3:ExistingObjectTag/org}:*",
         "aws:PrincipalTag/tenantIds": "*:${s3:ExistingObjectTag/tenantId}:*"},
        {"aws:PrincipalTag/orgs": "*:${s3:ExistingObjectTag/org}:*",
         "aws:PrincipalTag/tenantGroupIds": "*:${s3:ExistingObjectTag/tenantGroupId}:*"}]
    lists = [s["Condition"]["StringLike"] for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert lists == [{"s3:prefix": ["it/orglevel*/org=USM/*", "it/tenantlevel*/org=USM/*"],
                      "aws:PrincipalTag/orgs": "*:USM:*"},
                     {"s3:prefix": ["it/orglevel*/org=EHS/*", "it/tenantlevel*/org=EHS/*"],
                      "aws:PrincipalTag/orgs": "*:EHS:*"}]
    assert policy["Statement"][-1] == {"Action": "kms:Decrypt", "Effect": "Allow",
                                       "Resource": "arn:aws:kms:us-east-1:643101592424:key/d7d2b274"}


def test_policy_of_open_servings_tenancy_columns_and_no_grants(api: Actor) -> None:
    grant_setup(api)
    custom = {"servingName": "custom", "servingType": "S3", "url": "s3://b2/it/c", "schemaId": "c",
              "accessRestriction": "TENANT", "tenancyColumns": {"org": "organisation", "tenant": "tenant"}}
    assert api.post("/data-products/it/servings", json=custom).status_code == 201
    api.put("/data-products/it/access", json={"grantee": "GALACTIC", "servings": ["open", "custom"]})
    statements = api.get("/data-products/it/policies/GALACTIC", as_="admin").json()["Statement"]
    assert {"Action": "s3:GetObject*", "Effect": "Allow",
            "Resource": ["arn:aws:s3:::cds-data-product-dev/it/open/*"]} in statements
    assert {"aws:PrincipalTag/orgs": "*:${s3:ExistingObjectTag/organisation}:*",
            "aws:PrincipalTag/tenants": "*:${s3:ExistingObjectTag/tenant}:*"} in [
        s.get("Condition", {}).get("StringLike") for s in statements]
    nobody = api.get("/data-products/it/policies/NOBODY", as_="admin").json()
    assert nobody["Statement"] == []


def test_policy_readers(api: Actor) -> None:
    grant_setup(api)
    assert api.get("/data-products/it/policies/GALACTIC", as_="rocket").status_code == 200  # the owner
    assert api.get("/data-products/it/policies/ROCKET", as_="galactic").status_code == 403
    assert api.get("/data-products/it/policies/GALACTIC", as_="anonymous").status_code == 401
    owner = api.get("/data-products/it/policies/ROCKET").json()["Statement"]
    assert "s3:PutObject*" in owner[0]["Action"]  # the owner writes under its product's prefix


def test_every_change_is_logged_newest_first(api: Actor) -> None:
    grant_setup(api)
    api.put("/data-products/it", json={"description": "v2"})
    api.put("/data-products/it/access", json={"grantee": "GALACTIC", "servings": ["open"]})
    api.delete("/data-products/it/access/GALACTIC/open")
    log = api.get("/data-products/it/logs").json()
    assert log["total"] == 7
    assert [(e["action"], e["entity"]) for e in log["entries"]][:3] == [
        ("revoke", "access"), ("grant", "access"), ("update", "product")]
    update = log["entries"][2]
    assert update["actor"] == "jessie" and update["before"]["owner"] == "ROCKET"
    assert update["after"]["description"] == "v2" and update["at"].endswith("+00:00")
    page = api.get("/data-products/it/logs?offset=2&limit=2").json()
    assert [e["id"] for e in page["entries"]] == [e["id"] for e in log["entries"][2:4]]


@pytest.mark.parametrize(("query", "status"), [("limit=0", 400), ("offset=-1", 400), ("limit=1001", 400),
                                               ("page=2", 400), ("limit=1", 200)])
def test_log_paging_parameters(api: Actor, query: str, status: int) -> None:
    make_product(api)
    assert api.get(f"/data-products/it/logs?{query}").status_code == status
    assert api.get(f"/audit?{query}").status_code == status


def test_who_reads_which_logs(api: Actor) -> None:
    make_product(api)
    api.put("/data-products/g", as_="galactic", json={})
    assert api.get("/data-products/it/logs", as_="galactic").status_code == 403
    assert api.get("/data-products/it/logs", as_="anonymous").status_code == 401
    assert api.get("/data-products/it/logs", as_="rocket-key").status_code == 200  # keys read
    assert {e["product"] for e in api.get("/audit", as_="galactic").json()["entries"]} == {"g"}
    everything = api.get("/audit", as_="admin").json()["entries"]
    assert {e["product"] for e in everything if e["product"]} == {"it", "g"}
    assert {e["action"] for e in everything if not e["product"]} <= {"generate"}  # the fixture's generation
    assert api.get("/audit", as_="anonymous").status_code == 401
