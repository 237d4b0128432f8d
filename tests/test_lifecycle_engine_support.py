"""Shared by the lifecycle engine's tests (no tests here): a loopback webhook executor, a service with the
DevOps API, descriptors and payloads, and bounded waits."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

import generator.mounts
from tests.test_products_support import AsPrincipal

DEVOPS = "/api/v1/pp/devops"
FINAL = ("PROCESSED", "FAILED", "ABORTED")
WAIT_S = 15.0


def payload(*names: str) -> dict[str, Any]:
    """A generation payload with one small table per name, each with list and create routes."""
    tables = [{"name": n, "tableSchema": {"primaryKey": "id", "fields": [
        {"name": "id", "type": "integer"}, {"name": "label", "type": "string"}]}} for n in names]
    paths = {f"/{n}": {"get": {}, "post": {}} for n in names}
    return {"data_resource_schema": {"name": "lifecycle test", "data": {"dataDictionary": tables},
                                     "api": {"apiSpec": {"paths": paths}}}}


def descriptor(**stages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"info": {"name": "shop"}, "lifecycle": {"stages": [{"name": k, "tasks": v} for k, v in stages.items()]}}


def task(executor: str = "generator", **configurations: Any) -> dict[str, Any]:
    return {"executorRef": executor, "template": f"{executor}-template", "configurations": configurations}


class Webhook:
    """A webhook executor on loopback: records every task POSTed (body and headers) and answers 202; with
    `callback` set to a base URL, it calls back from a thread of its own with `result(task)`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.callback: str | None = None
        self.result: Callable[[dict[str, Any]], dict[str, Any]] = lambda task: {"status": "PROCESSED"}
        self.callbacks: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                hook.received.append(body)
                hook.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()
                if hook.callback is not None:
                    threading.Thread(target=hook.call_back, args=(body,), daemon=True).start()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def call_back(self, body: dict[str, Any]) -> None:
        time.sleep(0.05)
        response = httpx.patch(f"{self.callback}{body['callbackRef']}", json=self.result(body), timeout=10,
                               trust_env=False)
        self.callbacks.append(response.status_code)

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_S
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"the webhook got {len(self.received)} tasks, not {count}"
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def write_executors(path: Path, executors: dict[str, Any]) -> str:
    path.write_text(json.dumps(executors))
    return str(path)


@pytest.fixture
def devops(make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
           webhook: Webhook) -> Iterator[Callable[..., TestClient]]:
    """Factory: a fresh service with the DevOps API (and product `shop`, owned by ROCKET), executors `generator`
    and `hook` (the loopback webhook, token `hook-token`). `x-test-as: <name>` picks the caller (see
    tests/test_products_support.PRINCIPALS); without it the caller is the developer (development mode)."""
    # Only the lifecycle system: the other control-plane systems are tested by their own suites.
    monkeypatch.setattr(generator.mounts, "SYSTEMS", ("generator.lifecycle",))
    config = write_executors(tmp_path / "executors.json", {"hook": {"type": "webhook", "url": webhook.url,
                                                                    "token": "hook-token"}})
    monkeypatch.setenv("EXECUTORS_CONFIG", config)

    clients: list[TestClient] = []

    def make(product: bool = True) -> TestClient:
        client = make_client()
        clients.append(client)
        client.app.mounts = tuple(dataclasses.replace(m, app=AsPrincipal(m.app)) for m in client.app.mounts)
        if product:
            response = client.put("/data-products/shop", json={"owner": "ROCKET"})
            assert response.status_code in (200, 201), response.text
        return client

    yield make
    for client in clients:  # before make_client disposes the engines: no worker holds a connection
        engine_of(client).close()


def engine_of(client: TestClient) -> Any:
    return client.app.mounts[0].app.app.engine


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def wait_status(client: TestClient, kind: str, ident: int, statuses: tuple[str, ...] = FINAL) -> str:
    deadline = time.monotonic() + WAIT_S
    while True:
        status = client.get(f"{DEVOPS}/{kind}/{ident}/status").json()["status"]
        if status in statuses:
            return status
        assert time.monotonic() < deadline, f"{kind} {ident} is still {status}"
        time.sleep(0.02)


def register(client: TestClient, body: dict[str, Any], version: str = "1.0.0", product: str = "shop") -> None:
    response = client.put(f"{DEVOPS}/data-products/{product}/versions/{version}", json=body)
    assert response.status_code in (200, 201), response.text


def activity(client: TestClient, stage: str, start: bool = True, version: str = "1.0.0",
             **headers: str) -> dict[str, Any]:
    response = client.post(f"{DEVOPS}/activities?startAfterCreation={str(start).lower()}", headers=headers,
                           json={"dataProductId": "shop", "dataProductVersion": version, "stage": stage})
    assert response.status_code == 201, response.text
    return response.json()


def seed_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The seed's error body, checked: exactly {status, code, description, message, path}."""
    body = response.json()
    assert response.status_code == status, response.text
    assert set(body) == {"status", "code", "description", "message", "path"}, body
    assert (body["status"], body["code"]) == (status, code), body
    return body
