"""Swagger UI's "Try it out" works unedited: in a real Chromium, each operation of a resource is expanded,
"Try it out" and "Execute" are clicked without touching a field, and the UI must show a 2xx. The examples of
the served document are what the UI sends, so this is the proof that they are values the service accepts.
SQLite only (the examples do not depend on the database; tests/test_openapi_document.py runs them on both)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page

from tests.e2e.helpers import client
from tests.support.browser import chromium_page
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]

# The order a user would follow: create the example row, then change, read, find and delete it.
STEPS = [
    ("post", "/people", "201"),
    ("put", "/people/{id}", "200"),
    ("patch", "/people/{id}", "200"),
    ("get", "/people/{id}", "200"),
    ("get", "/people", "200"),
    ("post", "/people/query", "200"),
    ("get", "/people/query", "200"),
    ("delete", "/people/{id}", "204"),
]


def operation(page: Page, method: str, path: str) -> Locator:
    """The operation block Swagger UI rendered for `method path`."""
    return page.locator(f".opblock.opblock-{method}").filter(has=page.locator(f'[data-path="{path}"]'))


def execute_unedited(page: Page, method: str, path: str) -> tuple[str, str]:
    """Expand the operation, click "Try it out" then "Execute"; return the status and body the UI shows."""
    block = operation(page, method, path)
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first.inner_text().strip()
    body = block.locator(".live-responses-table .response-col_description").first.inner_text()
    block.locator(".opblock-summary").first.click()  # collapse: the page stays short and the next block visible
    return status, body


@pytest.mark.parametrize("name", ["default.json", "all_types.json"])
def test_every_people_operation_executes_unedited_from_swagger_ui(
    live_server: StartLiveServer, load_payload: Payload, tmp_path: Path, name: str
) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path)
    with client(server) as http:
        assert http.post("/generator", json=load_payload(name)).status_code == 201
        served = {(method, path) for path, item in http.get("/openapi.json").json()["paths"].items()
                  for method in item}  # fmt: skip
    steps = [step for step in STEPS if step[:2] in served]
    assert {("post", "/people"), ("put", "/people/{id}"), ("patch", "/people/{id}"), ("get", "/people/{id}")} <= {
        step[:2] for step in steps}, served

    with chromium_page() as page:
        page.goto(f"{server.url}/ui/")
        operation(page, "post", "/people").wait_for()
        for method, path, expected in steps:
            status, body = execute_unedited(page, method, path)
            assert status == expected, f"{method.upper()} {path} from Swagger UI: {status}\n{body}"
