"""The test infrastructure itself works: a failure here explains many failures elsewhere."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.chromium import render_dom

PAGE = """<!doctype html>
<html><body><div id="root"></div>
<script>
  setTimeout(() => {
    const item = document.createElement("p");
    item.id = "built";
    item.textContent = "built by script " + (6 * 7);
    document.getElementById("root").appendChild(item);
  }, 200);
</script></body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a loopback port from a thread; yield its base URL."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            thread.join()


def test_postgres_database_accepts_connections(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            assert conn.dialect.server_version_info is not None
            assert conn.dialect.server_version_info >= (15,), version
    finally:
        engine.dispose()


def test_chromium_renders_script_built_elements(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    with serve_directory(tmp_path) as base_url:
        dom = render_dom(f"{base_url}/index.html")
    assert '<p id="built">built by script 42</p>' in dom
