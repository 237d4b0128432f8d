"""Shared fixtures: real databases (SQLite and PostgreSQL), a live server, the payload corpus."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from generator.app import create_app
from generator.config import Settings
from tests.support.live_server import LiveServer, StartLiveServer
from tests.support.moto_server import MotoServer, start_moto
from tests.support.postgres import PostgresServer, start_postgres

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server per session: starting one takes seconds, a database takes milliseconds."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's HTTP server for S3, KMS, Secrets Manager and RDS, shared by the session; tests use own names."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """boto3 in this process pointed at moto's server (credentials and endpoint from the environment)."""
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database, named after the test so leftovers can be traced."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return postgres_server.create_database(f"t_{stem}_{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on both supported databases; PostgreSQL starts only if a postgresql case runs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def live_server() -> Iterator[StartLiveServer]:
    """Factory: ``live_server(database_url, workdir, env=None)`` starts a server; all stop at teardown."""
    servers: list[LiveServer] = []

    def start(database_url: str, workdir: Path, env: dict[str, str] | None = None,
              probe_headers: dict[str, str] | None = None) -> LiveServer:
        server = LiveServer(database_url, workdir, env, probe_headers)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The drg payload corpus; the copy in the repo wins so the suite runs without the shared folder."""
    in_repo = TESTS_DIR / "fixtures" / "corpus" / "drg"
    shared = TESTS_DIR.parents[1] / "shared" / "corpus" / "drg"
    for candidate in (in_repo, shared):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("payload corpus not found: copy it to tests/fixtures/corpus/drg")


@pytest.fixture
def make_client(database_url: str, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Factory for an in-process client of a fresh service on `database_url` (both databases).

    Calling it again builds a new service on the same database and payload file: a restart."""
    clients: list[TestClient] = []

    def make(plugins: tuple[object, ...] = (), **overrides: Any) -> TestClient:
        options = {"database_url": database_url, "data_dir": tmp_path / "data",
                   "payload_path": tmp_path / "payload.json", **overrides}
        settings = Settings(**options)
        client = TestClient(create_app(settings, plugins), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.app.runtime.engine.dispose()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def load_payload(corpus: Path) -> Callable[[str], dict[str, Any]]:
    """A corpus payload by file name, freshly decoded (tests may change it)."""

    def load(name: str) -> dict[str, Any]:
        return json.loads((corpus / name).read_text())

    return load
