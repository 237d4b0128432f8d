"""The lifecycle engine (generator/lifecycle, issue 17): versions, activities, tasks, callbacks, lifecycles,
media types and the seed's error format, on both databases, in process. A webhook executor on loopback
records what it is sent; the tests call back in its place (tests/test_lifecycle_engine_live.py has one that
calls back by itself, over HTTP, and the promotion and restart tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

import generator.mounts
from tests import test_lifecycle_engine_support as support
from tests.test_lifecycle_engine_support import (
    DEVOPS,
    Webhook,
    activity,
    descriptor,
    payload,
    register,
    seed_error,
    task,
    wait_status,
)

devops, webhook = support.devops, support.webhook  # the fixtures

Devops = Callable[..., TestClient]
SHOP = descriptor(dev=[task(payload=payload("item"))], test=[task("hook", check="${generation}")],
                  prod=[task("hook", step="one"), task("hook", step="two", endpoint="${endpoint}/v1")])


@pytest.fixture
def api(devops: Devops) -> TestClient:
    client = devops()
    register(client, SHOP)
    return client


# -- media types and the error format ---------------------------------------------------------------------
@pytest.mark.parametrize("accept, answered", [
    (None, "application/vnd.odmp.v1+json"),
    ("application/vnd.odmp.v1+json", "application/vnd.odmp.v1+json"),
    ("application/vnd.odmp+json", "application/vnd.odmp+json"),
    ("application/json", "application/json"),
    ("application/octet-stream", "application/octet-stream"),  # the seed allows it, for compatibility
    ("text/html, application/json;q=0.5", "application/json"),
    ("*/*", "application/vnd.odmp.v1+json"),
])
def test_accepted_media_types(api: TestClient, accept: str | None, answered: str) -> None:
    response = api.get(f"{DEVOPS}/activities", headers={"accept": accept} if accept else {})
    assert response.status_code == 200
    assert response.headers["content-type"] == answered


def test_unsupported_media_types_are_406_and_415(api: TestClient) -> None:
    body = seed_error(api.get(f"{DEVOPS}/activities", headers={"accept": "text/html"}), 406, 40601)
    assert body["path"] == f"{DEVOPS}/activities"
    seed_error(api.post(f"{DEVOPS}/activities", content=b"{}", headers={"content-type": "text/plain"}), 415, 41501)
    seed_error(api.post(f"{DEVOPS}/activities", content=b"{not json", headers={"content-type": "application/json"}),
               400, 40000)
    accepted = api.post(f"{DEVOPS}/activities", content=b'{"dataProductId": "shop", "dataProductVersion": "1.0.0", '
                        b'"stage": "dev"}', headers={"content-type": "application/vnd.odmp.v1+json"})
    assert accepted.status_code == 201


def test_unknown_routes_and_methods(api: TestClient) -> None:
    seed_error(api.get(f"{DEVOPS}/nothing"), 404, 40400)
    refused = seed_error(api.delete(f"{DEVOPS}/activities"), 405, 40501)
    assert refused["message"].endswith("GET, OPTIONS, POST")
    assert api.options(f"{DEVOPS}/tasks/1/status").headers["allow"] == "GET, OPTIONS, PATCH"


# -- versions -------------------------------------------------------------------------------------------
def test_versions_are_registered_replaced_and_read(devops: Devops) -> None:
    client = devops()
    path = f"{DEVOPS}/data-products/shop/versions/1.0.0"
    created = client.put(path, json=SHOP)
    assert created.status_code == 201 and created.json()["immutable"] is False
    assert client.put(path, json=SHOP).status_code == 200
    assert client.get(path).json()["descriptor"] == SHOP
    assert [v["version"] for v in client.get(f"{DEVOPS}/data-products/shop/versions").json()] == ["1.0.0"]
    seed_error(client.get(f"{DEVOPS}/data-products/shop/versions/9.9.9"), 404, 40404)
    seed_error(client.put(f"{DEVOPS}/data-products/nobody/versions/1.0.0", json=SHOP), 404, 40403)


@pytest.mark.parametrize("body, says", [
    (descriptor(dev=[task("azure-devops")]), "'azure-devops', which is not configured"),  # named
    ({"info": {}}, "needs a lifecycle block"),
    (descriptor(dev=[{"template": "x"}]), "executorRef is required"),
    (descriptor(dev=[{"executorRef": "generator", "configurations": []}]), "configurations must be an object"),
    (descriptor(dev=[{"executorRef": "generator", "service": "x"}]), "unknown member(s) service"),
    ({"lifecycle": {"stages": [{"name": "dev"}, {"name": "dev"}]}}, "names a stage already listed"),
    ([], "must be a JSON object"),
])
def test_bad_descriptors_are_400_saying_why(devops: Devops, body: Any, says: str) -> None:
    refused = seed_error(devops().put(f"{DEVOPS}/data-products/shop/versions/1.0.0", json=body), 400, 40003)
    assert says in refused["message"]


def test_a_version_is_immutable_once_an_activity_ran(api: TestClient) -> None:
    path = f"{DEVOPS}/data-products/shop/versions/1.0.0"
    planned = activity(api, "test", start=False)
    assert api.put(path, json=SHOP).status_code == 200  # a PLANNED activity has not run
    api.patch(f"{DEVOPS}/activities/{planned['id']}/status?action=START")
    seed_error(api.put(path, json=SHOP), 409, 40903)
    assert api.get(path).json()["immutable"] is True
    register(api, SHOP, version="1.0.1")  # a new version is free


def test_only_the_owner_or_an_admin_changes(api: TestClient) -> None:
    path = f"{DEVOPS}/data-products/shop/versions/2.0.0"
    seed_error(api.put(path, json=SHOP, headers={"x-test-as": "galactic"}), 403, 40301)
    seed_error(api.put(path, json=SHOP, headers={"x-test-as": "rocket-key"}), 403, 40301)
    seed_error(api.get(f"{DEVOPS}/activities", headers={"x-test-as": "anonymous"}), 401, 40101)
    assert api.put(path, json=SHOP, headers={"x-test-as": "rocket"}).status_code == 201
    body = {"dataProductId": "shop", "dataProductVersion": "2.0.0", "stage": "test"}
    seed_error(api.post(f"{DEVOPS}/activities", json=body, headers={"x-test-as": "galactic"}), 403, 40301)
    assert api.post(f"{DEVOPS}/activities", json=body, headers={"x-test-as": "admin"}).status_code == 201
    assert api.get(f"{DEVOPS}/activities", headers={"x-test-as": "galactic"}).status_code == 200  # reads are open


# -- activities -----------------------------------------------------------------------------------------
def test_create_plans_the_stages_tasks(api: TestClient) -> None:
    created = activity(api, "prod", start=False)
    assert created["status"] == "PLANNED" and created["startedAt"] is None
    assert [(t["status"], t["executorRef"], t["configurations"]["step"]) for t in created["tasks"]] == [
        ("PLANNED", "hook", "one"), ("PLANNED", "hook", "two")]
    assert api.get(f"{DEVOPS}/activities/{created['id']}").json()["stage"] == "prod"
    assert api.get(f"{DEVOPS}/activities/{created['id']}/status").json() == {"status": "PLANNED"}


@pytest.mark.parametrize("body, status, code", [
    ({"dataProductId": "shop", "dataProductVersion": "1.0.0", "stage": "qa"}, 422, 42201),  # no such stage
    ({"dataProductId": "shop", "dataProductVersion": "3.0.0", "stage": "dev"}, 422, 42201),  # no such version
    ({"dataProductId": "shop", "dataProductVersion": "1.0.0"}, 400, 40001),  # stage missing
    ({"dataProductId": "shop", "dataProductVersion": 1, "stage": "dev"}, 400, 40001),  # not a string
    (["shop"], 400, 40001),
    ({"dataProductId": "nobody", "dataProductVersion": "1.0.0", "stage": "dev"}, 404, 40403),
])
def test_bad_activities(api: TestClient, body: Any, status: int, code: int) -> None:
    seed_error(api.post(f"{DEVOPS}/activities", json=body), status, code)
    assert api.get(f"{DEVOPS}/activities").json() == []  # nothing was created


def test_activity_filters_and_lookups(api: TestClient) -> None:
    register(api, SHOP, version="1.1.0")
    first, second = activity(api, "test", start=False), activity(api, "prod", start=False, version="1.1.0")
    api.patch(f"{DEVOPS}/activities/{first['id']}/status?action=ABORT")

    def ids(query: str) -> list[int]:
        return [a["id"] for a in api.get(f"{DEVOPS}/activities?{query}").json()]

    assert ids("") == [first["id"], second["id"]]
    assert ids("dataProductId=shop&dataProductVersion=1.1.0") == [second["id"]]
    assert ids("stage=test") == [first["id"]]
    assert ids("status=ABORTED") == [first["id"]]
    assert ids("dataProductId=other") == []
    seed_error(api.get(f"{DEVOPS}/activities?status=DONE"), 400, 40002)
    seed_error(api.get(f"{DEVOPS}/activities/99"), 404, 40401)
    seed_error(api.get(f"{DEVOPS}/activities/abc"), 400, 40002)
    seed_error(api.get(f"{DEVOPS}/activities/99999999999999999999/status"), 400, 40002)


@pytest.mark.parametrize("query", ["action=STOP", "action=RESTART", ""])
def test_unknown_activity_actions_are_40055(api: TestClient, query: str) -> None:
    created = activity(api, "test", start=False)
    seed_error(api.patch(f"{DEVOPS}/activities/{created['id']}/status?{query}"), 400, 40055)


def test_illegal_activity_transitions_are_409_with_the_current_state(api: TestClient, webhook: Webhook) -> None:
    created = activity(api, "test", start=False)
    status = f"{DEVOPS}/activities/{created['id']}/status"
    assert api.patch(f"{status}?action=start").json() == {"status": "PROCESSING"}
    refused = seed_error(api.patch(f"{status}?action=START"), 409, 40902)
    assert "current state: PROCESSING" in refused["message"]
    assert api.patch(f"{status}?action=ABORT").json() == {"status": "ABORTED"}
    assert {t["status"] for t in api.get(f"{DEVOPS}/tasks?activityId={created['id']}").json()} == {"ABORTED"}
    for action in ("START", "ABORT"):
        assert "current state: ABORTED" in seed_error(api.patch(f"{status}?action={action}"), 409, 40902)["message"]
    planned = activity(api, "test", start=False)  # PLANNED → ABORTED: nothing ran
    assert api.patch(f"{DEVOPS}/activities/{planned['id']}/status?action=ABORT").json() == {"status": "ABORTED"}


def test_one_processing_activity_per_product_version(api: TestClient, webhook: Webhook) -> None:
    running = activity(api, "test")  # waits for the webhook's callback
    seed_error(api.post(f"{DEVOPS}/activities?startAfterCreation=true",
                        json={"dataProductId": "shop", "dataProductVersion": "1.0.0", "stage": "prod"}), 409, 40901)
    assert [a["id"] for a in api.get(f"{DEVOPS}/activities").json()] == [running["id"]]  # nothing created
    waiting = activity(api, "prod", start=False)
    seed_error(api.patch(f"{DEVOPS}/activities/{waiting['id']}/status?action=START"), 409, 40901)
    register(api, SHOP, version="1.2.0")
    assert activity(api, "test", version="1.2.0")["status"] == "PROCESSING"  # another version may run
    seed_error(api.post(f"{DEVOPS}/activities?startAfterCreation=maybe",
                        json={"dataProductId": "shop", "dataProductVersion": "1.0.0", "stage": "prod"}), 400, 40002)


# -- tasks and callbacks ----------------------------------------------------------------------------------
def test_webhook_gets_the_task_with_its_token_and_secrets(api: TestClient, webhook: Webhook) -> None:
    secret = "s3cr3t-value-42"
    created = activity(api, "test", **{"x-odm-hook-executor-secret-password": secret,
                                       "x-odm-other-executor-secret-password": "not-for-hook"})
    sent = webhook.wait_for(1)[0]
    assert sent["id"] == created["tasks"][0]["id"] and sent["status"] == "PROCESSING"
    assert sent["callbackRef"] == f"{DEVOPS}/tasks/{sent['id']}/status?action=STOP"
    assert sent["template"] == "hook-template" and sent["configurations"] == {"check": "${generation}"}
    headers = webhook.headers[0]
    assert headers["authorization"] == "Bearer hook-token"
    assert headers["x-odm-hook-executor-secret-password"] == secret
    assert "x-odm-other-executor-secret-password" not in headers  # only this executor's secrets
    wait_status(api, "tasks", sent["id"], ("PROCESSING",))
    stored = " ".join(api.get(f"{DEVOPS}/{what}").text for what in ("activities", "tasks", "lifecycles"))
    assert secret not in stored


def test_callbacks_pass_variables_and_end_the_activity(api: TestClient, webhook: Webhook) -> None:
    created = activity(api, "prod")
    first = webhook.wait_for(1)[0]
    result = {"status": "PROCESSED", "results": {"endpoint": "https://shop.example", "replicas": 3}}
    stop = f"{DEVOPS}/tasks/{first['id']}/status?action=STOP"
    assert api.patch(stop, json=result).json() == {"status": "PROCESSED"}
    second = webhook.wait_for(2)[1]
    assert second["configurations"] == {"step": "two", "endpoint": "https://shop.example/v1"}  # ${endpoint}
    seed_error(api.patch(stop, json=result), 409, 40902)  # no longer PROCESSING: nothing changes
    assert api.get(f"{DEVOPS}/tasks/{first['id']}").json()["results"] == result["results"]
    api.patch(f"{DEVOPS}/tasks/{second['id']}/status?action=STOP", json={"status": "PROCESSED", "results": {"ok": "y"}})
    assert wait_status(api, "activities", created["id"]) == "PROCESSED"
    ended = api.get(f"{DEVOPS}/activities/{created['id']}").json()
    assert ended["results"][str(first["id"])]["results"] == result["results"]
    assert ended["results"][str(second["id"])]["results"] == {"ok": "y"}
    assert ended["finishedAt"] and ended["errors"] is None


def test_update_variables_false_keeps_results_out_of_configurations(api: TestClient, webhook: Webhook) -> None:
    activity(api, "prod")
    first = webhook.wait_for(1)[0]
    api.patch(f"{DEVOPS}/tasks/{first['id']}/status?action=STOP&updateVariables=false",
              json={"status": "PROCESSED", "results": {"endpoint": "https://shop.example"}})
    assert webhook.wait_for(2)[1]["configurations"]["endpoint"] == "${endpoint}/v1"


def test_a_failed_task_fails_the_activity(api: TestClient, webhook: Webhook) -> None:
    created = activity(api, "prod")
    first = webhook.wait_for(1)[0]
    api.patch(f"{DEVOPS}/tasks/{first['id']}/status?action=STOP", json={"status": "FAILED", "errors": "disk full"})
    assert wait_status(api, "activities", created["id"]) == "FAILED"
    ended = api.get(f"{DEVOPS}/activities/{created['id']}").json()
    assert "disk full" in ended["errors"]
    assert [t["status"] for t in api.get(f"{DEVOPS}/tasks?activityId={created['id']}").json()] == ["FAILED", "ABORTED"]
    assert len(webhook.received) == 1  # the second task never ran


@pytest.mark.parametrize("query, body, status, code", [
    ("action=STOP", {"status": "DONE"}, 400, 40001),
    ("action=STOP", {"status": "PROCESSED", "results": "text"}, 400, 40001),
    ("action=STOP", {"status": "PROCESSED", "extra": 1}, 400, 40001),
    ("action=STOP&updateVariables=perhaps", {"status": "PROCESSED"}, 400, 40002),
    ("action=START", {"status": "PROCESSED"}, 400, 40055),
    ("", {"status": "PROCESSED"}, 400, 40055),
])
def test_bad_callbacks(api: TestClient, webhook: Webhook, query: str, body: Any, status: int, code: int) -> None:
    activity(api, "test")
    sent = webhook.wait_for(1)[0]
    seed_error(api.patch(f"{DEVOPS}/tasks/{sent['id']}/status?{query}", json=body), status, code)
    assert api.get(f"{DEVOPS}/tasks/{sent['id']}/status").json() == {"status": "PROCESSING"}


def test_a_callback_for_a_planned_or_unknown_task(api: TestClient) -> None:
    created = activity(api, "prod", start=False)
    planned = created["tasks"][0]["id"]
    refused = seed_error(api.patch(f"{DEVOPS}/tasks/{planned}/status?action=STOP", json={"status": "PROCESSED"}),
                         409, 40902)
    assert "current state: PLANNED" in refused["message"]
    assert api.get(f"{DEVOPS}/tasks/{planned}").json()["status"] == "PLANNED"
    seed_error(api.patch(f"{DEVOPS}/tasks/404/status?action=STOP", json={"status": "PROCESSED"}), 404, 40402)
    seed_error(api.get(f"{DEVOPS}/tasks/404"), 404, 40402)


def test_task_filters(api: TestClient, webhook: Webhook) -> None:
    done = activity(api, "dev")
    wait_status(api, "activities", done["id"])
    planned = activity(api, "prod", start=False)

    def ids(query: str) -> list[int]:
        return [t["id"] for t in api.get(f"{DEVOPS}/tasks?{query}").json()]

    everything = ids("")
    assert len(everything) == 3
    assert ids(f"activityId={planned['id']}") == [t["id"] for t in planned["tasks"]]
    assert ids("executor=generator") == [everything[0]]
    assert ids("status=PLANNED") == everything[1:]
    seed_error(api.get(f"{DEVOPS}/tasks?activityId=x"), 400, 40002)
    seed_error(api.get(f"{DEVOPS}/tasks?status=RUNNING"), 400, 40002)


# -- the generator executor and lifecycles ----------------------------------------------------------------
def test_generator_applies_the_payload_here(api: TestClient) -> None:
    created = activity(api, "dev")
    assert wait_status(api, "activities", created["id"]) == "PROCESSED"
    results = api.get(f"{DEVOPS}/tasks/{created['tasks'][0]['id']}").json()["results"]
    assert results["target"] == "local" and results["createdTables"] == "item"
    assert api.post("/item", json={"id": 1, "label": "first"}).status_code == 201
    assert {"id": 1, "label": "first"} in api.get("/item").json()["item"]
    assert api.get("/generator").json()["created_by"] == f"lifecycle:activity-{created['id']}"  # who, in history


def test_a_generation_a_task_applies_is_published_to_the_metadata_graph(
        devops: Devops, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metadata graph publishes the datasets of every generation applied here, a lifecycle task's too,
    in the generation's own transaction (hook `drg_generation_recording`)."""
    monkeypatch.setattr(generator.mounts, "SYSTEMS", ("generator.lifecycle", "generator.metadata"))
    api = devops()
    register(api, SHOP)
    created = activity(api, "dev")
    assert wait_status(api, "activities", created["id"]) == "PROCESSED"
    urn = "urn:li:dataset:(urn:li:dataPlatform:drg,item,PROD)"
    response = api.get("/openapi/entities/v1/latest", params={"urns": urn})
    assert response.status_code == 200, response.text
    schema = response.json()["responses"][urn]["aspects"]["schemaMetadata"]["value"]
    assert [f["fieldPath"] for f in schema["fields"]] == ["id", "label"]



def test_generator_failure_fails_the_task_with_the_reason(devops: Devops) -> None:
    client = devops()
    register(client, descriptor(dev=[task(payload={"data_resource_schema": {}})], empty=[task()]))
    for stage, says in (("dev", "Invalid generation payload"), ("empty", "configurations.payload must be")):
        created = activity(client, stage)
        assert wait_status(client, "activities", created["id"]) == "FAILED"
        assert says in client.get(f"{DEVOPS}/tasks/{created['tasks'][0]['id']}").json()["errors"]
    assert client.get(f"{DEVOPS}/lifecycles").json() == []


def test_lifecycles_record_the_stages_reached(api: TestClient, webhook: Webhook) -> None:
    seed_error(api.get(f"{DEVOPS}/lifecycles/shop/1.0.0/current"), 404, 40405)
    dev = activity(api, "dev")
    wait_status(api, "activities", dev["id"])
    current = api.get(f"{DEVOPS}/lifecycles/shop/1.0.0/current").json()
    assert (current["stage"], current["finishedAt"], current["activityId"]) == ("dev", None, dev["id"])
    test = activity(api, "test")
    sent = webhook.wait_for(1)[0]
    assert sent["configurations"] == {"check": "${generation}"}  # variables belong to their activity
    api.patch(f"{DEVOPS}/tasks/{sent['id']}/status?action=STOP", json={"status": "PROCESSED", "results": {"a": "b"}})
    wait_status(api, "activities", test["id"])
    failed = activity(api, "prod")
    first = webhook.wait_for(2)[1]
    api.patch(f"{DEVOPS}/tasks/{first['id']}/status?action=STOP", json={"status": "FAILED"})
    wait_status(api, "activities", failed["id"])
    aborted = activity(api, "prod")
    api.patch(f"{DEVOPS}/activities/{aborted['id']}/status?action=ABORT")
    history = api.get(f"{DEVOPS}/lifecycles/shop/1.0.0").json()
    assert [(h["stage"], h["finishedAt"] is None) for h in history] == [("dev", False), ("test", True)]
    assert history[0]["finishedAt"] == history[1]["startedAt"]  # the previous stage closed
    assert history[1]["results"][str(sent["id"])]["results"] == {"a": "b"}
    assert api.get(f"{DEVOPS}/lifecycles/shop/1.0.0/current").json()["stage"] == "test"  # FAILED/ABORTED: kept
    assert api.get(f"{DEVOPS}/lifecycles").json() == history == api.get(f"{DEVOPS}/lifecycles/shop").json()
    assert api.get(f"{DEVOPS}/lifecycles/other").json() == []


def test_versions_are_served_at_the_products_own_path(api: TestClient) -> None:
    response = api.get("/data-products/shop/versions/1.0.0")
    assert response.status_code == 200 and response.json()["descriptor"] == SHOP
    assert api.put("/data-products/shop/versions/1.0.1", json=SHOP).status_code == 201


def test_metrics_name_the_route_not_the_id(api: TestClient) -> None:
    api.get(f"{DEVOPS}/activities/5")
    metrics = api.get("/metrics").text
    assert 'route="/api/v1/pp/devops/activities/{id}",status="404"' in metrics
    assert "activities/5" not in metrics


def test_an_unexpected_failure_is_50001_without_details(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.lifecycle import store

    def broken(*_: Any) -> Any:
        raise RuntimeError("connection string postgresql://user:hunter2@db")

    monkeypatch.setattr(store, "list_tasks", broken)
    failed = seed_error(api.get(f"{DEVOPS}/tasks"), 500, 50001)
    assert "hunter2" not in failed["message"]


def test_production_refuses_anonymous_callers_in_the_seeds_error_format(make_client: Callable[..., TestClient]
                                                                       ) -> None:
    client = make_client(app_env="production", auth_tokens=("lifecycle-token",))
    for path in (f"{DEVOPS}/activities", "/data-products/shop/versions/1.0.0"):
        body = seed_error(client.get(path), 401, 40101)
        assert body["path"].endswith(path)
    assert client.get(f"{DEVOPS}/activities", headers={"Authorization": "Bearer lifecycle-token"}).status_code == 200
