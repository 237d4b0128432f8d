"""Operations through real processes: request ids in responses and JSON log lines, labelled metrics, metrics
summed over two gunicorn workers (the image's configuration, deploy/gunicorn.conf.py), and a graceful
shutdown that finishes the request in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import client, count_rows, last_run_log
from tests.support.live_server import REPO_ROOT, LiveServer
from tests.support.postgres import free_port

Payload = Callable[[str], dict[str, Any]]
KEY_ROUTE = (("method", "GET"), ("route", "/people/{id}"), ("status", "200"))


class GunicornServer(LiveServer):
    """The image's command: gunicorn with uvicorn workers, configured by deploy/gunicorn.conf.py."""

    def start(self) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py",
                   "--bind", f"127.0.0.1:{port}", "wsgi:app"]
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)} (uvicorn wsgi:app workers)\n".encode())
            log.flush()
            self._process = subprocess.Popen(command, cwd=REPO_ROOT, env=self._environment(), stdout=log,
                                             stderr=subprocess.STDOUT)
        self._wait_until_healthy()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a run's log, parsed; a line that is not JSON fails the test."""
    parsed = []
    for line in text.splitlines():
        if line.strip():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"a log line is not JSON: {line!r}")
    return parsed


def samples(http: httpx.Client, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    return {tuple(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples
            if sample.name == name}


def wait_for(condition: str, check: Callable[[], bool], limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {condition}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, load_payload: Payload) -> Iterator[LiveServer]:
    """One uvicorn process writing JSON logs, with default.json generated and one person."""
    workdir = tmp_path_factory.mktemp("operations")
    live = LiveServer(f"sqlite:///{workdir}/db.sqlite3", workdir, {"LOG_FORMAT": "json"})
    live.start()
    try:
        with client(live) as http:
            assert http.post("/generator", json=load_payload("default.json")).status_code == 201
            assert http.post("/people", json={"name": "Ann"}).status_code == 201
        yield live
    finally:
        live.stop()


def test_the_request_id_is_echoed_and_on_the_lines_of_that_request(server: LiveServer,
                                                                    load_payload: Payload) -> None:
    with client(server) as http:
        kept = http.get("/people/1", headers={"X-Request-Id": "e2e-kept-1"})
        made = http.get("/people/1")
        failed = http.post("/generator", json={"data_resource_schema": 1}, headers={"X-Request-Id": "e2e-bad"})
    assert kept.headers["x-request-id"] == "e2e-kept-1"
    assert made.headers["x-request-id"] and made.headers["x-request-id"] != "e2e-kept-1"
    assert failed.status_code == 400 and failed.headers["x-request-id"] == "e2e-bad"

    def of(request_id: str) -> list[dict[str, Any]]:
        return [line for line in json_lines(last_run_log(server)) if line.get("request_id") == request_id]

    # uvicorn's access line of each request, and the app's own warning about the refused payload
    wait_for("the access lines are written", lambda: len(of("e2e-kept-1")) >= 1 and len(of("e2e-bad")) >= 1)
    assert any('"GET /people/1' in line["message"] for line in of("e2e-kept-1"))
    assert any(made.headers["x-request-id"] == line.get("request_id") for line in json_lines(last_run_log(server)))
    assert all(line["level"] and line["logger"] and line["time"] for line in json_lines(last_run_log(server)))


def test_metrics_count_requests_by_route_template(server: LiveServer) -> None:
    with client(server) as http:
        before = samples(http, "drg_http_requests_total").get(KEY_ROUTE, 0.0)
        for _ in range(3):
            assert http.get("/people/1").status_code == 200
        counts = samples(http, "drg_http_requests_total")
    assert counts[KEY_ROUTE] == before + 3
    assert not any(dict(labels)["route"] == "/people/1" for labels in counts)


def test_two_workers_sum_their_metrics(tmp_path: Path, load_payload: Payload) -> None:
    metrics_dir = tmp_path / "metrics"
    server = GunicornServer(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path, {
        "WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "LOG_FORMAT": "json",
        "ACCESS_LOG": "true", "GENERATION_POLL_SECONDS": "0.2"})
    server.start()
    try:
        wait_for("both workers have started",
                 lambda: server.log_text().count("Application startup complete") == 2)
        with client(server) as http:
            assert http.post("/generator", json=load_payload("default.json")).status_code == 201
            assert http.post("/people", json={"name": "Ann"}).status_code == 201
        wait_for("the other worker adopts the generation", lambda: "Adopted generation" in server.log_text())
        # Fresh connections, so requests spread over both workers; stop once both have answered some.
        pids: set[int] = set()
        sent = 0
        while len(pids) < 2 or sent < 20:
            assert sent < 400, f"one worker answered every request: {pids}"
            request_id = f"spread-{sent}"
            response = httpx.get(f"{server.url}/people/1", headers={"X-Request-Id": request_id}, trust_env=False,
                                 timeout=10)
            sent += 1
            assert response.status_code == 200, response.text
            wait_for("the access line is written", lambda rid=request_id: rid in server.log_text(), 5)
            pids |= {line["pid"] for line in json_lines(last_run_log(server))
                     if line.get("request_id") == request_id}
        for _ in range(6):  # whichever worker answers the scrape, it shows both workers' requests
            with client(server) as http:
                assert samples(http, "drg_http_requests_total")[KEY_ROUTE] == sent
                generations = samples(http, "drg_generations_total")  # one worker applied it, the other adopted it
                assert generations[(("outcome", "applied"), ("source", "posted"))] == 1
                assert generations[(("outcome", "applied"), ("source", "adopted"))] == 1
        assert len({path.name.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}) >= 2
    finally:
        server.stop()
    json_lines(last_run_log(server))  # gunicorn's own lines are JSON too


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path, load_payload: Payload, kind: str) -> None:
    database_url = f"sqlite:///{tmp_path}/db.sqlite3"
    server = (GunicornServer if kind == "gunicorn" else LiveServer)(database_url, tmp_path, {"WEB_CONCURRENCY": "1"})
    server.start()
    try:
        with client(server) as http:
            assert http.post("/generator", json=load_payload("default.json")).status_code == 201
        release = threading.Event()
        answers: list[httpx.Response] = []

        def trickle() -> Iterator[bytes]:  # a chunked body: the request is in flight until it ends
            yield b'{"name": '
            release.wait(20)
            yield b'"Grace"}'

        def upload() -> None:
            answers.append(httpx.post(f"{server.url}/people", content=trickle(), trust_env=False, timeout=30,
                                      headers={"content-type": "application/json"}))

        uploading = threading.Thread(target=upload)
        uploading.start()

        def in_flight() -> bool:  # the scrape itself, and the upload waiting for the rest of its body
            with client(server) as http:
                return samples(http, "drg_http_requests_in_progress")[()] >= 2

        wait_for("the upload is in flight", in_flight)
        assert server._process is not None
        server._process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert server._process.poll() is None, "the server exited with a request in flight"
        release.set()
        uploading.join(30)
        assert answers and answers[0].status_code == 201, answers and answers[0].text
        # then it stops on its own (uvicorn re-raises the signal once done: a SIGTERM exit status)
        assert server._process.wait(20) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    assert count_rows(database_url, "people") == 1
