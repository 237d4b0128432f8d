"""Authentication as a real process enforces it: production needs credentials on every route (here the
static AUTH_TOKENS; JWTs are tests/e2e/test_e2e_identity.py), every operation of both served documents
included, refuses to start without any credential source, and development mode says loudly that it is open
(yet checks the credentials a request does send). SQLite only."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    TokenLiveServer,
    assert_problem,
    client,
    last_run_log,
    run_until_exit,
    server_environment,
)
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]
TOKENS = ("tok1", "tok2")
PRODUCTION = {"APP_ENV": "production", "AUTH_TOKENS": ",".join(TOKENS)}


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, load_payload: Payload) -> Iterator[TokenLiveServer]:
    """One production server for the module, with default.json generated (using a valid token)."""
    workdir = tmp_path_factory.mktemp("production")
    server = TokenLiveServer(f"sqlite:///{workdir}/db.sqlite3", workdir, PRODUCTION, token=TOKENS[0])
    server.start()
    try:
        with client(server, TOKENS[0]) as http:
            generated = http.post("/generator", json=load_payload("default.json"))
            assert generated.status_code == 201, generated.text
            assert http.post("/people", json={"name": "Ann"}).status_code == 201
        yield server
    finally:
        server.stop()


ROUTES = [
    ("GET", "/health"),
    ("POST", "/generator"),
    ("GET", "/openapi.json"),
    ("GET", "/ui/"),
    ("GET", "/ui/swagger-ui-bundle.js"),
    ("GET", "/people"),
    ("POST", "/people"),
    ("GET", "/people/1"),
    ("PATCH", "/people/1"),
    ("DELETE", "/people/1"),
    ("GET", "/admin/ui/"),
    ("GET", "/no-such-route"),
]
ROUTE_IDS = [f"{method} {path}" for method, path in ROUTES]
WRONG_AUTHORIZATION = {
    "wrong-token": "Bearer wrong",
    "token-prefix": "Bearer tok",
    "token-suffix": "Bearer tok1x",
    "token-list": "Bearer tok1,tok2",
    "scheme-only": "Bearer",
    "basic-scheme": "Basic tok1",
    "no-scheme": "tok1",
}


def _request(http: httpx.Client, method: str, path: str, load_payload: Payload,
             headers: dict[str, str] | None = None) -> httpx.Response:
    body: Any = None
    if path == "/generator":
        body = load_payload("default.json")
    elif method in ("POST", "PATCH"):
        body = {"name": "Intruder"}
    return http.request(method, path, json=body, headers=headers)


def _assert_unauthorized(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), response.headers


def _people(server: TokenLiveServer) -> list[dict[str, Any]]:
    with client(server, TOKENS[0]) as http:
        listed = http.get("/people")
    assert listed.status_code == 200, listed.text
    return list(listed.json()["people"])


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
def test_production_refuses_requests_without_a_token(
    production: TokenLiveServer, load_payload: Payload, method: str, path: str
) -> None:
    before = _people(production)
    with client(production) as http:
        _assert_unauthorized(_request(http, method, path, load_payload))
    assert _people(production) == before  # a refused write changed nothing


@pytest.mark.parametrize("authorization", list(WRONG_AUTHORIZATION.values()), ids=list(WRONG_AUTHORIZATION))
@pytest.mark.parametrize(("method", "path"), [("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/ui/"),
                                              ("POST", "/generator"), ("POST", "/people")],
                         ids=["health", "openapi", "ui", "generator", "people"])
def test_production_refuses_a_wrong_token(
    production: TokenLiveServer, load_payload: Payload, method: str, path: str, authorization: str
) -> None:
    before = _people(production)
    with client(production) as http:
        _assert_unauthorized(_request(http, method, path, load_payload, {"Authorization": authorization}))
    assert _people(production) == before


@pytest.mark.parametrize("token", TOKENS)
def test_production_serves_every_route_with_a_valid_token(
    production: TokenLiveServer, load_payload: Payload, token: str
) -> None:
    with client(production, token) as http:
        health = http.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        assert health.json()["mode"] == "production"
        assert "off" not in health.json()["authentication"]

        again = http.post("/generator", json=load_payload("default.json"))
        assert again.status_code == 200, again.text  # already applied by the fixture

        document = http.get("/openapi.json")
        assert document.status_code == 200, document.text
        assert "/people" in document.json()["paths"]

        ui = http.get("/ui/")
        assert ui.status_code == 200, ui.text
        assert ui.headers["content-type"].startswith("text/html")
        assert http.get("/ui/swagger-ui-bundle.js").status_code == 200

        created = http.post("/people", json={"name": f"Made with {token}"})
        assert created.status_code == 201, created.text
        read = http.get(created.headers["location"])
        assert read.status_code == 200 and read.json()["name"] == f"Made with {token}", read.text
        assert http.delete(created.headers["location"]).status_code == 204
    assert "DEVELOPMENT MODE" not in last_run_log(production)


def test_unauthenticated_generation_changes_nothing(
    live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path, PRODUCTION,
                         probe_headers={"Authorization": f"Bearer {TOKENS[0]}"})
    with client(server) as anonymous:
        _assert_unauthorized(anonymous.post("/generator", json=load_payload("default.json")))
    with client(server, TOKENS[1]) as http:
        assert http.get("/health").json()["generation"] is None
        assert http.get("/openapi.json").json()["paths"] == {}
    assert not (tmp_path / "payload.json").exists()


def _documented_operations(server: TokenLiveServer) -> list[tuple[str, str]]:
    """Every (method, path) of the generated document and the admin document, path parameters filled in."""
    operations: list[tuple[str, str]] = []
    with client(server, TOKENS[0]) as http:
        for document_path in ("/openapi.json", "/admin/openapi.json"):
            document = http.get(document_path)
            assert document.status_code == 200, document.text
            prefix = "" if document_path == "/openapi.json" else document.json().get("servers", [{}])[0].get("url", "")
            for path, item in document.json()["paths"].items():
                for method in item:
                    if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                        operations.append((method.upper(), prefix.rstrip("/") + re.sub(r"\{[^}]+\}", "1", path)))
    return operations


def test_production_refuses_every_documented_operation_without_a_token(
    production: TokenLiveServer, load_payload: Payload
) -> None:
    operations = _documented_operations(production)
    assert len(operations) > 20 and ("POST", "/generator") in operations and ("GET", "/people") in operations
    before = _people(production)
    with client(production) as http:
        for method, path in operations:
            response = _request(http, method, path, load_payload)
            assert response.status_code == 401, f"{method} {path}: {response.status_code} {response.text}"
            _assert_unauthorized(response)
    assert _people(production) == before


@pytest.mark.parametrize("auth_tokens", [None, " , "], ids=["unset", "blank-entries"])
def test_production_without_auth_tokens_refuses_to_start(tmp_path: Path, auth_tokens: str | None) -> None:
    env = server_environment(tmp_path, f"sqlite:///{tmp_path}/db.sqlite3", APP_ENV="production",
                             AUTH_TOKENS=auth_tokens, JWT_SECRET=None, JWT_JWKS_URL=None, JWT_JWKS_FILE=None)
    done = run_until_exit(env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    for setting in ("AUTH_TOKENS", "JWT_JWKS_URL", "JWT_SECRET"):  # the message says what to set
        assert setting in output, output


def test_development_mode_checks_credentials_that_are_sent(live_server: StartLiveServer, tmp_path: Path) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path, {"APP_ENV": "development"})
    with client(server) as http:
        assert http.get("/health").status_code == 200  # no credentials: the developer
        for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}, {"X-Auth-Token": "k"}):
            _assert_unauthorized(http.get("/health", headers=headers))


def test_development_mode_warns_loudly_at_start_up(live_server: StartLiveServer, tmp_path: Path) -> None:
    server = live_server(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path, {"APP_ENV": "development"})
    warnings = [line for line in last_run_log(server).splitlines() if "DEVELOPMENT MODE" in line]
    assert warnings, last_run_log(server)
    assert any("WARNING" in line or "CRITICAL" in line for line in warnings), warnings
    with client(server) as http:
        health = http.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["mode"] == "development"
    assert health.json()["authentication"].startswith("off")
