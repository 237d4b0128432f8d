"""Integer keys are never handed out twice, and a client-chosen key never makes the database's own
numbering collide with rows it already handed out (found as false 409s under concurrency on PostgreSQL)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]


@pytest.fixture
def served(client: TestClient, load_payload: Payload) -> TestClient:
    response = client.post("/generator", json=load_payload("default.json"))
    assert response.status_code == 201, response.text
    return client


def test_a_deleted_id_is_never_handed_out_again(served: TestClient) -> None:
    assert served.post("/people", json={"name": "Ann"}).json()["id"] == 1
    assert served.delete("/people/1").status_code == 204
    again = served.post("/people", json={"name": "Bob"})
    assert again.status_code == 201, again.text
    assert again.json()["id"] == 2


def test_a_deleted_client_chosen_id_is_not_handed_out_again(served: TestClient) -> None:
    """A key sent by a client counts as handed out: after deleting it the database continues above it."""
    for method, path, body in (("POST", "/people", {"id": 7, "name": "Ann"}), ("PUT", "/people/9", {"name": "Cy"})):
        assert served.request(method, path, json=body).status_code == 201
    assert served.delete("/people/7").status_code == 204
    assert served.delete("/people/9").status_code == 204
    assert served.post("/people", json={"name": "Bob"}).json()["id"] == 10


def test_a_client_chosen_key_below_the_sequence_does_not_move_it_back(served: TestClient) -> None:
    for name in ("a", "b", "c", "d", "e"):
        served.post("/people", json={"name": name})
    assert served.delete("/people/2").status_code == 204
    assert served.put("/people/2", json={"name": "again"}).status_code == 201
    assert served.post("/people", json={"id": 3, "name": "taken"}).status_code == 409
    assert served.post("/people", json={"name": "f"}).json()["id"] == 6


POSTERS = 3
POSTS_EACH = 400
DEADLINE_S = 15.0


def test_concurrent_creates_with_and_without_keys_never_conflict_falsely(
    postgres_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    """Three clients POST without a key while a fourth creates rows with PUT: at keys just above the last one
    handed out (the sequence must move past them) and at negative keys (below it: it must not move back).

    Every POST must get a fresh key: a 409 there means the sequence handed out a key twice, either because it
    was moved back below keys given to inserts still in flight, or moved forward too late."""
    server = live_server(postgres_url, tmp_path)
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as setup:
        assert setup.post("/generator", json=load_payload("default.json")).status_code == 201
    posted: Counter[int] = Counter()
    put: Counter[int] = Counter()
    latest = [0]
    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE_S

    def poster() -> None:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:
            for _ in range(POSTS_EACH):
                if time.monotonic() > deadline:
                    break
                response = http.post("/people", json={"name": "p"})
                posted[response.status_code] += 1
                if response.status_code == 201:
                    latest[0] = max(latest[0], response.json()["id"])

    def putter() -> None:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:
            for key in itertools.count(1):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                target = -key if key % 2 else latest[0] + 3
                put[http.put(f"/people/{target}", json={"name": "q"}).status_code] += 1

    threads = [threading.Thread(target=poster) for _ in range(POSTERS)]
    creator = threading.Thread(target=putter)
    for thread in [creator, *threads]:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    creator.join()
    assert sum(posted.values()) > 1000, posted
    assert posted == Counter({201: sum(posted.values())}), posted
    # a PUT may find its key taken by a POST that committed meanwhile: then it replaces that row (200)
    assert put[201] > 10 and not set(put) - {200, 201}, put
