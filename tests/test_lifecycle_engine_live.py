"""The lifecycle engine in real uvicorn processes: a webhook executor on loopback that calls back over HTTP,
the promotion of a product version from a dev instance (SQLite) to a prod instance (PostgreSQL, production
mode) through the `generator` executor, and a restart in the middle of an activity."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select

from generator.lifecycle.tables import tasks
from tests import test_lifecycle_engine_support as support
from tests.support.live_server import LiveServer, StartLiveServer
from tests.test_lifecycle_engine_support import (
    DEVOPS,
    FINAL,
    WAIT_S,
    Webhook,
    descriptor,
    payload,
    task,
    write_executors,
)

webhook = support.webhook  # the fixture
PROD_TOKEN = "prod-token-for-lifecycle-tests"


class Service:
    """A live server, called over HTTP."""

    def __init__(self, server: LiveServer, token: str | None = None) -> None:
        self.server = server
        self.headers = {"authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.server.url}{path}", headers=headers, timeout=30, trust_env=False,
                             **kwargs)

    def activity(self, stage: str, **headers: str) -> dict[str, Any]:
        response = self.call("POST", f"{DEVOPS}/activities?startAfterCreation=true", headers=headers,
                             json={"dataProductId": "shop", "dataProductVersion": "1.0.0", "stage": stage})
        assert response.status_code == 201, response.text
        return response.json()

    def wait(self, ident: int) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while (found := self.call("GET", f"{DEVOPS}/activities/{ident}").json())["status"] not in FINAL:
            assert time.monotonic() < deadline, f"activity {ident} is still {found['status']}"
            time.sleep(0.05)
        return found


def dev_service(live_server: StartLiveServer, tmp_path: Path, executors: dict[str, Any], body: dict[str, Any],
                workdir: str = "dev") -> Service:
    config = write_executors(tmp_path / f"{workdir}-executors.json", executors)
    (tmp_path / workdir).mkdir()
    server = live_server(f"sqlite:///{tmp_path / workdir / 'db.sqlite3'}", tmp_path / workdir,
                         env={"EXECUTORS_CONFIG": config})
    service = Service(server)
    assert service.call("PUT", "/data-products/shop", json={"owner": "ROCKET"}).status_code == 201
    registered = service.call("PUT", f"{DEVOPS}/data-products/shop/versions/1.0.0", json=body)
    assert registered.status_code == 201, registered.text
    return service


def test_a_webhook_executor_calls_back(live_server: StartLiveServer, tmp_path: Path, webhook: Webhook) -> None:
    body = descriptor(build=[task("hook", step="one"), task("hook", url="${endpoint}/api")])
    dev = dev_service(live_server, tmp_path, {"hook": {"type": "webhook", "url": webhook.url, "token": "t0k"}}, body)
    webhook.callback = dev.server.url
    webhook.result = lambda sent: {"status": "PROCESSED", "results": {"endpoint": f"https://{sent['id']}.example"}}
    secret = "live-secret-0c1d2e3f"
    created = dev.activity("build", **{"x-odm-hook-executor-secret-apikey": secret})
    ended = dev.wait(created["id"])
    assert ended["status"] == "PROCESSED", ended
    first, second = webhook.received
    assert second["configurations"]["url"] == f"https://{first['id']}.example/api"
    assert webhook.callbacks == [200, 200]
    assert [h["x-odm-hook-executor-secret-apikey"] for h in webhook.headers] == [secret, secret]
    assert {h["authorization"] for h in webhook.headers} == {"Bearer t0k"}
    assert secret not in dev.server.log_text()
    assert dev.call("GET", f"{DEVOPS}/lifecycles/shop/1.0.0/current").json()["stage"] == "build"


def test_promotion_from_dev_to_prod(live_server: StartLiveServer, tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "prod").mkdir()
    auth = {"authorization": f"Bearer {PROD_TOKEN}"}
    prod_server = live_server(postgres_url, tmp_path / "prod", probe_headers=auth,
                              env={"APP_ENV": "production", "AUTH_TOKENS": PROD_TOKEN})
    prod = Service(prod_server, PROD_TOKEN)
    assert Service(prod_server).call("GET", "/item").status_code == 401  # production: credentials needed
    executors = {"prod": {"type": "generator", "url": f"{prod_server.url}/generator", "token": PROD_TOKEN}}
    shop = payload("item")
    dev = dev_service(live_server, tmp_path, executors, descriptor(dev=[task(payload=shop)],
                                                                   prod=[task("prod", payload=shop)]))
    assert prod.call("GET", "/item").status_code == 404  # nothing generated there yet
    assert dev.wait(dev.activity("dev")["id"])["status"] == "PROCESSED"
    assert dev.call("POST", "/item", json={"id": 1, "label": "on dev"}).status_code == 201
    promoted = dev.wait(dev.activity("prod")["id"])
    assert promoted["status"] == "PROCESSED", promoted
    result = next(iter(promoted["results"].values()))["results"]
    assert result["target"] == f"{prod_server.url}/generator" and result["createdTables"] == "item"
    assert prod.call("POST", "/item", json={"id": 7, "label": "on prod"}).status_code == 201
    assert prod.call("GET", "/item").json()["item"] == [{"id": 7, "label": "on prod"}]  # prod's own database
    history = dev.call("GET", f"{DEVOPS}/lifecycles/shop/1.0.0").json()
    assert [(h["stage"], h["finishedAt"] is None) for h in history] == [("dev", False), ("prod", True)]


def test_a_restart_in_the_middle_of_an_activity(live_server: StartLiveServer, tmp_path: Path,
                                                webhook: Webhook) -> None:
    body = descriptor(release=[task("hook", step="deploy"), task(payload=payload("release_note"))])
    dev = dev_service(live_server, tmp_path, {"hook": {"type": "webhook", "url": webhook.url}}, body)
    created = dev.activity("release")
    sent = webhook.wait_for(1)[0]
    engine = create_engine(dev.server.database_url)
    try:
        support.wait_until(lambda: _delivered(engine, sent["id"]))
    finally:
        engine.dispose()
    dev.server.restart()  # the webhook has the task; the service stops before its callback
    assert dev.call("GET", f"{DEVOPS}/tasks/{sent['id']}/status").json() == {"status": "PROCESSING"}
    called = httpx.patch(f"{dev.server.url}{sent['callbackRef']}", json={"status": "PROCESSED"}, timeout=10,
                         trust_env=False)
    assert called.json() == {"status": "PROCESSED"}
    ended = dev.wait(created["id"])
    assert ended["status"] == "PROCESSED", ended
    assert len(webhook.received) == 1  # not handed over again by the restart
    assert dev.call("GET", "/release_note").status_code == 200  # the next task ran after the restart
    assert json.loads(dev.call("GET", f"{DEVOPS}/lifecycles/shop/1.0.0/current").text)["stage"] == "release"


def _delivered(engine: Any, task_id: int) -> bool:
    with engine.connect() as connection:
        return connection.execute(select(tasks.c.delivered_at).where(tasks.c.id == task_id)).scalar() is not None
