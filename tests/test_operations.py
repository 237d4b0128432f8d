"""Operations (generator/operations): request ids, JSON logs, metrics labels, probes and who may reach them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from generator.app import create_app
from generator.config import Settings
from generator.operations import Operations, OperationsSettings
from generator.operations.logs import REQUEST_ID, JsonFormatter, RequestIdFilter, formatter_config, log_format
from generator.operations.metrics import Metrics
from generator.operations.requests import UNMATCHED, RequestIds

TOKEN = "ops-service-token"
SECRET = "an-hs256-secret-of-at-least-32-bytes!"
Payload = Callable[[str], dict[str, Any]]
MakeService = Callable[..., TestClient]


@pytest.fixture
def make_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeService]:
    """A fresh in-process service on SQLite; `env` sets operations variables (PUBLIC_METRICS, ...)."""
    clients: list[TestClient] = []

    def make(env: dict[str, str] | None = None, **overrides: Any) -> TestClient:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        options = {"database_url": f"sqlite:///{tmp_path}/db.sqlite3", "data_dir": tmp_path / "data",
                   "payload_path": tmp_path / "payload.json", **overrides}
        client = TestClient(create_app(Settings(**options)), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.app.runtime.engine.dispose()


@pytest.fixture
def served(make_service: MakeService, load_payload: Payload) -> TestClient:
    client = make_service()
    assert client.post("/generator", json=load_payload("default.json")).status_code == 201
    assert client.post("/people", json={"name": "Ann"}).status_code == 201
    return client


def production(make_service: MakeService, **env: str) -> TestClient:
    return make_service(env, app_env="production", auth_tokens=(TOKEN,), jwt_secret=SECRET)


def user_token(admin: bool = False) -> str:
    groups = ["G_TEAM_PLATFORM_ADMIN"] if admin else ["G_TEAM_READERS"]
    return jwt.encode({"sub": "ann", "exp": int(time.time()) + 300, "groups": groups}, SECRET, algorithm="HS256")


def samples(client: TestClient, name: str, headers: dict[str, str] | None = None) -> dict[tuple[tuple[str, str], ...],
                                                                                           float]:
    """Samples of metric `name` by their sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def requests_of(client: TestClient, route: str, method: str = "GET", status: str = "200") -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return samples(client, "drg_http_requests_total").get(labels, 0.0)


# -- request ids ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "kept"), [
    ("abc-123", True),  # a plain token
    ("0f8fad5b-d9cb-469f-a165-70867728950e", True),  # a UUID
    ("x" * 128, True),  # the longest allowed
    ("x" * 129, False),  # too long
    ("has space", False),
    ("quote\"d", False),
    ("", False),
])
def test_a_sane_request_id_is_echoed_and_any_other_replaced(served: TestClient, sent: str, kept: bool) -> None:
    response = served.get("/people/1", headers={"X-Request-Id": sent})
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert (echoed == sent) is kept
    assert 0 < len(echoed) <= 128


def test_made_request_ids_are_unique_and_on_every_answer(served: TestClient) -> None:
    answers = [served.get("/people/1"), served.get("/nowhere"), served.post("/ready"), served.get("/health")]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert len(set(ids)) == len(ids)
    assert RequestIds().of({"headers": []}) != RequestIds().of({"headers": []})  # per-process prefixes differ


def test_refused_requests_carry_a_request_id_too(make_service: MakeService) -> None:
    client = production(make_service)
    refused = client.get("/generator", headers={"X-Request-Id": "refused-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "refused-1"


# -- logs ----------------------------------------------------------------------------------------------------

class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    handler = Collect()
    logger = logging.getLogger("generator")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_lines_logged_during_a_request_carry_its_id(make_service: MakeService, load_payload: Payload,
                                                     log_lines: list[str]) -> None:
    client = make_service()
    # The generation is applied in the admin app's worker thread: the id must cross into it.
    response = client.post("/generator", json=load_payload("default.json"), headers={"X-Request-Id": "gen-42"})
    assert response.status_code == 201 and response.headers["x-request-id"] == "gen-42"
    parsed = [json.loads(line) for line in log_lines]
    applied = [line for line in parsed if "applied in" in line["message"]]
    assert applied and all(line["request_id"] == "gen-42" for line in applied), parsed
    assert REQUEST_ID.get() is None  # reset after the request


def test_a_server_error_is_logged_with_the_request_id_and_traceback(served: TestClient, log_lines: list[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = served.app.runtime.current.routes.match("/people/1")[0].endpoints["GET"]

    async def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(served.app.runtime.current.routes.match("/people/1")[0].endpoints, "GET", broken)
    response = served.get("/people/1", headers={"X-Request-Id": "err-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "err-1"
    errors = [json.loads(line) for line in log_lines if json.loads(line)["level"] == "ERROR"]
    assert errors and errors[-1]["request_id"] == "err-1"
    assert "RuntimeError: boom" in errors[-1]["exception"]
    assert endpoint is not broken


def test_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord("generator.x", logging.WARNING, __file__, 1, "two\nlines %s", ("ok",), None)
    record.table = "people"  # an `extra=` field
    token = REQUEST_ID.set("r-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "two\nlines ok" and parsed["level"] == "WARNING" and parsed["logger"] == "generator.x"
    assert parsed["request_id"] == "r-1" and parsed["table"] == "people" and parsed["time"].endswith("+00:00")
    outside = json.loads(JsonFormatter().format(logging.LogRecord("g", logging.INFO, "", 1, "m", None, None)))
    assert "request_id" not in outside


def test_text_lines_name_the_request_id() -> None:
    record = logging.LogRecord("generator", logging.INFO, "", 1, "hello", None, None)
    RequestIdFilter().filter(record)
    assert record.request_id == "-"  # type: ignore[attr-defined]
    assert formatter_config("json")["formatters"]["main"] == {"()": "generator.operations.logs.JsonFormatter"}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "text"),  # development
    ({"APP_ENV": "production"}, "json"),
    ({"APP_ENV": "production", "LOG_FORMAT": "text"}, "text"),
    ({"LOG_FORMAT": "JSON"}, "json"),
])
def test_log_format_follows_the_environment(env: dict[str, str], expected: str) -> None:
    assert log_format(env) == expected


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT must be json or text"):
        log_format({"LOG_FORMAT": "xml"})


# -- metrics -------------------------------------------------------------------------------------------------

def test_requests_are_labelled_by_route_template(served: TestClient) -> None:
    for key in (1, 2, 3, 1):
        served.get(f"/people/{key}")
    served.get("/people?limit=2")
    counts = samples(served, "drg_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/people/{id}"), ("status", "200"))] == 2
    assert counts[(("method", "GET"), ("route", "/people/{id}"), ("status", "404"))] == 2
    assert counts[(("method", "GET"), ("route", "/people"), ("status", "200"))] == 1
    assert not [labels for labels in counts if dict(labels)["route"].startswith("/people/") and "{" not in
                dict(labels)["route"]], "a raw path became a label"
    latency = samples(served, "drg_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/people/{id}"))] == 4


@pytest.mark.parametrize(("method", "path", "route"), [
    ("GET", "/no-such-table", UNMATCHED),  # 404 of the data plane
    ("GET", "/no-such-table/1/2/3", UNMATCHED),
    ("DELETE", "/team/1", "/team/{id}"),  # 405: the route is known, the method is not an operation
    ("GET", "/generator", "/generator"),  # the admin app
    ("GET", "/data-products/nope", "/data-products/*"),
    ("GET", "/openapi.json", "/openapi.json"),
    ("GET", "/ui/", "/ui"),
    ("GET", "/rest/people", "/rest/*"),
    ("GET", "/ready", "/ready"),
])
def test_other_requests_get_a_bounded_label(served: TestClient, method: str, path: str, route: str) -> None:
    status = served.request(method, path).status_code
    assert requests_of(served, route, method, str(status)) >= 1


def test_unknown_methods_share_one_label(served: TestClient) -> None:
    served.request("BREW", "/people")
    assert any(dict(labels)["method"] == "OTHER" for labels in samples(served, "drg_http_requests_total"))


def test_generations_are_counted_and_timed(make_service: MakeService, load_payload: Payload) -> None:
    client = make_service()
    payload = load_payload("default.json")
    assert client.post("/generator", json=payload).status_code == 201
    assert client.post("/generator", json=payload).status_code == 200  # the same payload: unchanged
    assert client.post("/generator", json={"data_resource_schema": "nope"}).status_code == 400
    counts = samples(client, "drg_generations_total")
    assert counts[(("outcome", "applied"), ("source", "posted"))] == 1
    assert counts[(("outcome", "unchanged"), ("source", "posted"))] == 1
    assert counts[(("outcome", "failed"), ("source", "posted"))] == 1
    seconds = samples(client, "drg_generation_duration_seconds_sum")[(("source", "posted"),)]
    assert 0 < seconds < 30


def test_the_connection_pool_is_reported(served: TestClient) -> None:
    for name in ("size", "checked_out", "idle", "overflow"):
        assert samples(served, f"drg_db_pool_{name}"), name
    assert samples(served, "drg_db_pool_size")[()] >= 1


def test_per_process_registries_do_not_collide(tmp_path: Path) -> None:
    first, second = Metrics(), Metrics()
    first.observe("/a/{id}", "GET", 200, 0.01)
    assert b'route="/a/{id}"' in first.render() and b'route="/a/{id}"' not in second.render()


# -- probes and who may reach them ---------------------------------------------------------------------------

def test_ready_and_version_answer(served: TestClient) -> None:
    ready = served.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["checks"] == {"database": "ok", "generation": "ok"}
    assert body["generation"]["digest"] == served.get("/generator").json()["digest"]
    version = served.get("/version").json()
    assert version["service"] == "data-resource-generator" and version["version"]
    assert version["generation"] == body["generation"]
    head = served.head("/version")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(served.get("/version").content)


def test_ready_answers_on_both_databases(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    assert client.get("/ready").json()["checks"]["database"] == "ok"


def test_ready_is_503_when_the_database_fails_or_hangs(make_service: MakeService,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_service({"READY_TIMEOUT_SECONDS": "0.2"})
    probes = client.app.operations.serve

    def unreachable() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(probes, "_ping", unreachable)
    failed = client.get("/ready")
    assert failed.status_code == 503 and failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["checks"]["database"] == "unreachable (OperationalError)"
    assert failed.json()["status"] == "not ready" and failed.json()["title"] == "Service Unavailable"

    monkeypatch.setattr(probes, "_ping", lambda: time.sleep(2))
    probes._ready = None  # the failure above is cached for a second
    started = time.monotonic()
    hung = client.get("/ready")
    assert hung.status_code == 503 and "no answer within 0.2 s" in hung.json()["detail"]
    assert time.monotonic() - started < 1.5


def test_probe_routes_take_get_and_head_only(served: TestClient) -> None:
    refused = served.post("/ready")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, OPTIONS"
    assert refused.headers["content-type"] == "application/problem+json"
    assert served.options("/metrics").status_code == 204


@pytest.mark.parametrize(("path", "status", "opened"), [
    ("/health", 401, {}),  # secure by default: every route, the probes too
    ("/ready", 401, {}),
    ("/health", 200, {"PUBLIC_PROBES": "true"}),  # for load balancers that cannot send a token
    ("/ready", 200, {"PUBLIC_PROBES": "true"}),
    ("/version", 401, {"PUBLIC_PROBES": "true"}),  # probes only
    ("/metrics", 401, {"PUBLIC_PROBES": "true"}),
    ("/people", 401, {"PUBLIC_PROBES": "true", "PUBLIC_METRICS": "true"}),
])
def test_production_opens_only_what_the_settings_open(make_service: MakeService, path: str, status: int,
                                                      opened: dict[str, str]) -> None:
    client = production(make_service, **opened)
    assert client.get(path).status_code == status


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_a_wrong_token_is_refused_even_on_open_routes(make_service: MakeService, path: str) -> None:
    client = production(make_service, PUBLIC_METRICS="true", PUBLIC_PROBES="true")
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize(("caller", "status"), [
    ("service", 200),  # a service token
    ("admin", 200),  # an administrator's JWT
    ("user", 403),  # any other user: metrics tell about every table
])
def test_metrics_in_production_are_for_administrators(make_service: MakeService, caller: str, status: int) -> None:
    client = production(make_service)
    token = TOKEN if caller == "service" else user_token(admin=caller == "admin")  # made now: tokens expire
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/metrics", headers=headers).status_code == status
    assert client.get("/version", headers=headers).status_code == 200


def test_public_metrics_opens_metrics_and_version(make_service: MakeService) -> None:
    client = production(make_service, PUBLIC_METRICS="true")
    assert client.get("/metrics").status_code == 200
    assert client.get("/version").status_code == 200
    assert client.get("/generator").status_code == 401


def test_health_without_credentials_says_no_more_than_before(make_service: MakeService) -> None:
    client = production(make_service, PUBLIC_PROBES="true")
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["mode"] == "production"


def test_operations_settings_from_the_environment() -> None:
    settings = OperationsSettings.from_env({"PUBLIC_METRICS": "yes", "READY_TIMEOUT_SECONDS": "0.5",
                                            "POOL_METRICS_SECONDS": "0", "DRG_COMMIT": " abc ",
                                            "PUBLIC_PROBES": "on"})
    assert settings == OperationsSettings(public_metrics=True, ready_timeout_seconds=0.5, pool_sample_seconds=0,
                                          commit="abc", public_probes=True)
    assert Operations  # the dispatcher's entry (wired in generator/app.py)


# -- deployment files ----------------------------------------------------------------------------------------

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_gunicorn_config_empties_the_metrics_folder_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert config["workers"] == 3 and config["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert config["graceful_timeout"] == 30 and config["accesslog"] is None
    config["on_starting"](None)
    assert folder.is_dir() and not list(folder.iterdir())


def test_compose_runs_two_replicas_behind_a_proxy_that_keeps_metrics_inside() -> None:
    import yaml

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert services["app"]["deploy"]["replicas"] == 2
    assert "ports" not in services["app"] and services["proxy"]["ports"]
    assert services["app"]["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "location = /metrics" in (DEPLOY / "nginx.conf").read_text()
