"""Swagger UI at /ui/ in a real headless Chromium: it loads /openapi.json and renders exactly the
whitelisted operations of the current generation. SQLite only (the UI does not depend on the database)."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.e2e.helpers import client
from tests.support.chromium import render_dom
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]

# default.json's whitelist, minus the many-to-many routes (see the report on relationship routes).
EXPECTED = {
    ("GET", "/people"), ("POST", "/people"),
    ("GET", "/people/query"), ("POST", "/people/query"),
    ("GET", "/people/{id}"), ("PUT", "/people/{id}"), ("PATCH", "/people/{id}"), ("DELETE", "/people/{id}"),
    ("GET", "/team"),
    ("GET", "/team/{id}"), ("PUT", "/team/{id}"),
}  # fmt: skip
NOT_WHITELISTED = {("DELETE", "/team/{id}"), ("PATCH", "/team/{id}"), ("POST", "/team"), ("GET", "/order"),
                   ("GET", "/required")}  # fmt: skip


class OperationCollector(HTMLParser):
    """Collects (method label, data-path) of every operation block Swagger UI rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []
        self.paths: list[str] = []
        self.titles: list[str] = []
        self._text_into: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._text_into = self.methods
            self.methods.append("")
        elif "opblock-summary-path" in classes:
            self.paths.append(attributes.get("data-path") or "")
        elif "title" in classes and tag == "h2":
            self._text_into = self.titles
            self.titles.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "h2"):
            self._text_into = None

    def handle_data(self, data: str) -> None:
        if self._text_into is not None:
            self._text_into[-1] += data

    def operations(self) -> list[tuple[str, str]]:
        assert len(self.methods) == len(self.paths), (self.methods, self.paths)
        return [(m.strip(), p) for m, p in zip(self.methods, self.paths, strict=True)]


def test_swagger_ui_renders_exactly_the_whitelisted_operations(
    live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path)
    with client(server) as http:
        assert http.post("/generator", json=load_payload("default.json")).status_code == 201
        document = http.get("/openapi.json").json()
    served = {(method.upper(), path) for path, item in document["paths"].items() for method in item}

    log_before = len(server.log_text())
    dom = render_dom(f"{server.url}/ui/")
    browser_log = server.log_text()[log_before:]

    collector = OperationCollector()
    collector.feed(dom)
    rendered = collector.operations()
    assert rendered, f"Swagger UI rendered no operations:\n{dom[-3000:]}"
    assert "Failed to load API definition" not in dom
    assert any(document["info"]["title"] in title for title in collector.titles), collector.titles
    assert len(rendered) == len(set(rendered)), f"an operation is rendered twice: {rendered}"
    assert set(rendered) == served, "the UI differs from /openapi.json"
    assert EXPECTED <= set(rendered), f"missing from the UI: {EXPECTED - set(rendered)}"
    assert not NOT_WHITELISTED & set(rendered), f"not whitelisted yet shown: {NOT_WHITELISTED & set(rendered)}"
    assert {path for _, path in rendered} <= {path for _, path in EXPECTED} | {
        "/people/{id}/team", "/team/{id}/people"
    }, rendered
    # The browser itself fetched the page, its assets and the document from this server.
    for request in ("GET /ui/ HTTP/1.1", "GET /ui/swagger-ui-bundle.js HTTP/1.1", "GET /openapi.json HTTP/1.1"):
        assert f'"{request}" 200' in browser_log, f"the browser did not get {request}:\n{browser_log}"
