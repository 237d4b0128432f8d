"""What only a real server on a socket shows: odd request targets, WebSocket upgrades, a huge declared
Content-Length, and a worker that keeps answering while another request's large body is parsed."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import assert_problem, client
from tests.support.live_server import LiveServer

Payload = Callable[[str], dict[str, Any]]
SOCKET_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, load_payload: Payload) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("limits")
    live = LiveServer(f"sqlite:///{workdir}/db.sqlite3", workdir)
    live.start()
    try:
        with client(live) as http:
            assert http.post("/generator", json=load_payload("default.json")).status_code == 201
        yield live
    finally:
        live.stop()


def raw_request(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (httpx cannot send `*` targets or lie about Content-Length); parse the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S) as connection:
        connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def test_options_asterisk_lists_the_methods(server: LiveServer) -> None:
    status, headers, _ = raw_request(server, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 204
    assert "GET" in headers["allow"] and "OPTIONS" in headers["allow"]


@pytest.mark.parametrize("method", [b"GET", b"POST", b"DELETE"])
def test_other_methods_on_asterisk_are_400_problems(server: LiveServer, method: bytes) -> None:
    status, headers, body = raw_request(server, method + b" * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                                         b"Content-Length: 0\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    assert "'*'" in json.loads(body)["detail"]


def test_a_websocket_upgrade_is_refused_without_a_server_error(server: LiveServer) -> None:
    status, _, _ = raw_request(server, b"GET /people HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                       b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert status in (403, 404)


def test_a_huge_declared_length_is_refused_at_once(server: LiveServer) -> None:
    started = time.perf_counter()
    status, headers, body = raw_request(server, b"POST /people HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                                b"application/json\r\nContent-Length: 10000000000\r\n\r\n{")
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["limit"] == 10 * 1024 * 1024
    assert time.perf_counter() - started < SOCKET_TIMEOUT_S / 2  # answered, not held until a timeout


def test_health_answers_while_a_large_body_is_parsed(server: LiveServer) -> None:
    """A 10 MB body is parsed and validated off the event loop: the same worker keeps answering."""
    big = json.dumps({"name": "z" * 9_900_000}).encode()
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def upload() -> None:
        with client(server) as http:
            outcome["response"] = http.post("/people", content=big, headers={"content-type": "application/json"},
                                            timeout=60)
        finished.set()

    latencies: list[float] = []
    with client(server) as http:
        http.get("/health")  # warm the connection
        thread = threading.Thread(target=upload)
        thread.start()
        while not finished.is_set():
            started = time.perf_counter()
            assert http.get("/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
        thread.join(timeout=60)
    assert outcome["response"].status_code == 201, outcome["response"].text[:300]
    assert len(latencies) >= 3, "the upload finished before /health was asked: the test proves nothing"
    assert max(latencies) < 0.1, sorted(latencies)[-5:]


def test_a_catastrophic_pattern_is_matched_in_linear_time(tmp_path: Path, live_server: Any) -> None:
    table = {"name": "words", "tableSchema": {"primaryKey": "id", "fields": [
        {"name": "id", "type": "integer"},
        {"name": "word", "type": "string", "constraints": {"pattern": "(a+)+"}},
    ]}}  # fmt: skip
    payload = {"data_resource_schema": {"data": {"dataDictionary": [table]},
                                        "api": {"apiSpec": {"paths": {"/words": {"post": {}}}}}}}
    live = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path)
    with httpx.Client(base_url=live.url, timeout=30, trust_env=False) as http:
        assert http.post("/generator", json=payload).status_code == 201
        started = time.perf_counter()
        refused = http.post("/words", json={"word": "a" * 40 + "b"})
        elapsed = time.perf_counter() - started
        assert_problem(refused, 400)
        assert elapsed < 1.0  # backtracking took 4.7 s at 26 characters and doubles with each one more
        assert http.post("/words", json={"word": "a" * 40}).status_code == 201
