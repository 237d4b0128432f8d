"""Swagger UI in a real headless Chromium. At /ui/ it loads /openapi.json and renders exactly the
whitelisted operations of the current generation; at /admin/ui/ it offers the admin API and the metadata
graph (a definition selector), whose "Try it out" reads the live graph; the metadata graph's own UI at
/openapi/swagger-ui/ keeps working. SQLite only (the UI does not depend on the database)."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.e2e.helpers import client
from tests.e2e.test_e2e_try_it_out import operation
from tests.support.browser import chromium_page
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


BATCH_GET = "/openapi/v3/entity/{entityName}/batchGet"
PEOPLE = "urn:li:dataset:(urn:li:dataPlatform:drg,people,PROD)"


def test_admin_ui_offers_the_metadata_graph_and_its_try_it_out_reads_the_live_graph(
    live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path)
    with client(server) as http:
        assert http.post("/generator", json=load_payload("default.json")).status_code == 201  # publishes `people`
    log_before = len(server.log_text())
    with chromium_page(timeout_ms=15_000) as page:  # two documents and a live call: room on a busy machine
        page.goto(f"{server.url}/admin/ui/")
        operation(page, "post", "/generator").wait_for()  # the admin document comes first
        selector = page.locator(".download-url-wrapper select")
        assert selector.locator("option").all_inner_texts() == ["Admin API", "Metadata graph"]
        selector.select_option(label="Metadata graph")
        operation(page, "post", BATCH_GET).wait_for()
        assert "Metadata graph" in page.locator("h2.title").first.inner_text()
        assert operation(page, "post", "/generator").count() == 0  # the admin operations are gone
        assert operation(page, "patch", "/openapi/v3/entity/{entityName}/{urn}/{aspect}").count() == 1
        block = operation(page, "post", BATCH_GET)
        block.locator(".opblock-summary").first.click()
        block.locator("button.try-out__btn").click()
        block.locator("button.execute").click()  # the example body, unedited
        answer = block.locator(".live-responses-table .response")
        status = answer.locator(".response-col_status").first.inner_text().strip()
        body = answer.locator(".response-col_description pre").first.inner_text()
    assert status == "200", body
    assert PEOPLE in body and '"schemaName": "people"' in body, body  # the generator's published dataset
    browser_log = server.log_text()[log_before:]
    for request in ("GET /admin/ui/ HTTP/1.1", "GET /admin/openapi.json HTTP/1.1", "GET /openapi/v3/api-docs HTTP/1.1",
                    "POST /openapi/v3/entity/dataset/batchGet HTTP/1.1"):
        assert f'"{request}" 200' in browser_log, f"the browser did not get {request}:\n{browser_log}"


def test_the_metadata_graphs_own_swagger_ui_still_renders_its_operations(live_server: StartLiveServer,
                                                                          tmp_path: Path) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path)
    collector = OperationCollector()
    collector.feed(render_dom(f"{server.url}/openapi/swagger-ui/"))
    assert ("POST", BATCH_GET) in collector.operations(), collector.operations()
    assert any("Metadata graph" in title for title in collector.titles), collector.titles
