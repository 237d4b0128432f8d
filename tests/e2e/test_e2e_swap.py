"""Regeneration under load: while clients keep using payload A's route, POSTing payload B (A's tables plus
a new one) swaps the API without a single failed request, and B's new route answers as soon as the POST
returns. SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.helpers import client
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]
CLIENTS = 4
REQUESTS_PER_PHASE = 60  # requests the loop must complete before a swap and again after it
PHASE_TIMEOUT_S = 30.0
PEOPLE_PATHS = ["/people", "/people/{id}"]


def _payload(default: dict[str, Any], tables: list[str], paths: list[str], title: str) -> dict[str, Any]:
    """default.json cut down to ``tables`` and the whitelist ``paths`` (copied as they are)."""
    payload = copy.deepcopy(default)
    document = payload["data_resource_schema"]
    dictionary = document["data"]["dataDictionary"]
    document["data"]["dataDictionary"] = [entry for entry in dictionary if entry["name"] in tables]
    document["data"].pop("relationships", None)
    spec = document["api"]["apiSpec"]
    spec["paths"] = {path: spec["paths"][path] for path in paths}
    spec["info"]["title"] = title
    return payload


def payloads(load_payload: Payload) -> tuple[dict[str, Any], dict[str, Any]]:
    """A: people, served at /people and /people/{id}. B: A plus team, served at /team and /team/{id}."""
    default = load_payload("default.json")
    payload_a = _payload(default, ["people"], PEOPLE_PATHS, "A")
    payload_b = _payload(default, ["people", "team"], [*PEOPLE_PATHS, "/team", "/team/{id}"], "B")
    return payload_a, payload_b


@dataclass
class ClientLoop:
    """Threads that send one request until stopped, recording every outcome and when it was in flight."""

    url: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    statuses: list[int] = field(default_factory=list)
    row_counts: list[int] = field(default_factory=list)  # rows in each 200 list page
    windows: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered) per request
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0, trust_env=False) as http:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = http.request(self.method, self.path, json=self.body)
                    listed = response.status_code == 200 and self.method == "GET"
                    rows = len(response.json()["people"]) if listed else -1
                except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                    with self.lock:
                        self.errors.append(repr(exc))
                    continue
                with self.lock:
                    self.statuses.append(response.status_code)
                    self.row_counts.append(rows)
                    self.windows.append((sent, time.monotonic()))

    def done(self) -> int:
        with self.lock:
            return len(self.statuses) + len(self.errors)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while self.done() < count:
            assert time.monotonic() < deadline, f"only {self.done()} requests in {PHASE_TIMEOUT_S:.0f} s"
            time.sleep(0.01)

    def overlapping(self, start: float, end: float) -> int:
        """Requests that were in flight at some moment between ``start`` and ``end``."""
        with self.lock:
            return sum(1 for sent, answered in self.windows if sent < end and answered > start)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)
        assert not any(thread.is_alive() for thread in self.threads), "a client thread hung"

    def assert_all(self, status: int) -> None:
        assert not self.errors, f"{len(self.errors)} requests failed at the transport level: {self.errors[:5]}"
        server_errors = [s for s in self.statuses if s >= 500]
        assert not server_errors, f"{len(server_errors)} of {len(self.statuses)} answered 5xx: {server_errors[:10]}"
        assert set(self.statuses) == {status}, f"a route that stayed whitelisted answered {set(self.statuses)}"


def _timed_post(http: httpx.Client, payload: dict[str, Any]) -> tuple[httpx.Response, tuple[float, float]]:
    started = time.monotonic()
    response = http.post("/generator", json=payload)
    return response, (started, time.monotonic())


def test_regeneration_under_read_load_serves_the_new_route_at_once(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    payload_a, payload_b = payloads(load_payload)
    server = live_server(database_url, tmp_path)

    with client(server) as http:
        generated_a = http.post("/generator", json=payload_a)
        assert generated_a.status_code == 201, generated_a.text
        assert http.get("/team").status_code == 404  # not served by A
        for name in ("Ann", "Bea", "Cy"):
            assert http.post("/people", json={"name": name}).status_code == 201

        loop = ClientLoop(server.url, "GET", "/people")
        loop.start()
        try:
            loop.wait_for(REQUESTS_PER_PHASE)
            generated_b, swap_b = _timed_post(http, payload_b)
            # Straight after the POST returns: B's new route is served, A's route still is.
            team_list = http.get("/team")
            team_put = http.put("/team/7", json={"name": "Blue"})
            team_read = http.get("/team/7")
            loop.wait_for(loop.done() + REQUESTS_PER_PHASE)

            # And back to A (its tables still match): /team disappears at once, /people stays up.
            generated_a_again, swap_a = _timed_post(http, payload_a)
            team_gone = http.get("/team")
            loop.wait_for(loop.done() + REQUESTS_PER_PHASE)
        finally:
            loop.finish()

        assert generated_b.status_code == 201, generated_b.text
        assert generated_b.json()["created_tables"] == ["team"], generated_b.text
        assert team_list.status_code == 200, team_list.text
        assert team_list.json()["team"] == []
        assert team_put.status_code == 201, team_put.text
        assert team_read.status_code == 200 and team_read.json() == {"id": 7, "name": "Blue"}, team_read.text
        assert generated_a_again.status_code == 201, generated_a_again.text
        assert generated_a_again.json()["created_tables"] == [], generated_a_again.text
        assert team_gone.status_code == 404, team_gone.text
        assert http.get("/health").json()["generation"] == generated_a.json()["digest"]

    # The loop really ran during both regenerations (otherwise this test would prove nothing).
    assert loop.overlapping(*swap_b) > 0 and loop.overlapping(*swap_a) > 0, (swap_b, swap_a)
    loop.assert_all(200)
    assert set(loop.row_counts) == {3}, f"reads saw a different set of rows: {set(loop.row_counts)}"


SWAPS = 4  # A→B→A→B→A: each swap runs while clients keep writing


def test_regeneration_under_write_load_succeeds(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    """Writers keep inserting into A's table while generations alternate; every generation and every
    write must succeed (a busy database is waited for, not turned into a 500)."""
    payload_a, payload_b = payloads(load_payload)
    server = live_server(database_url, tmp_path)

    with client(server) as http:
        assert http.post("/generator", json=payload_a).status_code == 201
        loop = ClientLoop(server.url, "POST", "/people", {"name": "Writer"})
        loop.start()
        outcomes: list[tuple[str, httpx.Response, tuple[float, float]]] = []
        try:
            loop.wait_for(REQUESTS_PER_PHASE)
            for swap in range(SWAPS):
                name, payload = ("B", payload_b) if swap % 2 == 0 else ("A", payload_a)
                response, window = _timed_post(http, payload)
                outcomes.append((name, response, window))
                loop.wait_for(loop.done() + REQUESTS_PER_PHASE // 2)
        finally:
            loop.finish()
        listed = http.get("/people", params={"limit": 1})
        health = http.get("/health").json()

    statuses = [(name, r.status_code) for name, r, _ in outcomes]
    first_failure = next((r.text[:300] for _, r, _ in outcomes if r.status_code != 201), "")
    assert all(status == 201 for _, status in statuses), (
        f"generations failed while clients were writing: {statuses}; first failure: {first_failure}"
    )
    assert all(loop.overlapping(*window) > 0 for _, _, window in outcomes), "a swap ran without concurrent writes"
    assert health["generation"] == outcomes[-1][1].json()["digest"]
    loop.assert_all(201)
    assert listed.status_code == 200, listed.text
