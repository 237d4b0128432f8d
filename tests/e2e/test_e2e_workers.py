"""Two uvicorn workers behind one port: a generation posted to whichever worker answers reaches the other
within the poll interval, so every request soon sees the new routes. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.live_server import StartLiveServer
from tests.test_lifecycle import one_table_payload

LIMIT_S = 10.0  # poll interval 0.5 s; generous for a loaded 2-core machine


def wait_for(condition: str, check: Callable[[], bool], limit: float = LIMIT_S) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {condition}"
        time.sleep(0.05)


def test_every_worker_serves_a_new_generation(
    database_url: str, live_server: StartLiveServer, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path, {"WEB_CONCURRENCY": "2", "GENERATION_POLL_SECONDS": "0.5"})
    wait_for("both workers have started", lambda: server.log_text().count("Application startup complete") == 2)
    assert httpx.post(f"{server.url}/generator", json=one_table_payload("fleet"), trust_env=False,
                      timeout=30).status_code == 201
    wait_for("the other worker adopts the generation", lambda: "Adopted generation" in server.log_text())
    # Fresh connections each time, so the kernel spreads the requests over both workers.
    statuses = [httpx.get(f"{server.url}/fleet", trust_env=False, timeout=10).status_code for _ in range(40)]
    assert statuses == [200] * 40
