"""PostgreSQL drops a connection (pg_terminate_backend, a failover, a restart): the next request on that
pooled connection must not be a 500. Reads retry once on a fresh connection; a write that lost its
connection is a 503 with Retry-After (nothing was committed, the client may retry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from generator.app import create_app
from generator.config import Settings
from tests.test_lifecycle import one_table_payload


def _terminate_service_connections(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            killed = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    finally:
        engine.dispose()
    return int(killed or 0)


@pytest.fixture
def served(postgres_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=postgres_url, payload_path=tmp_path / "payload.json", poll_seconds=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.post("/generator", json=one_table_payload("kept")).status_code == 201
        for label in ("a", "b"):
            assert client.post("/kept", json={"label": label}).status_code == 201
        yield client


def test_reads_survive_a_dropped_connection(served: TestClient, postgres_url: str) -> None:
    assert served.get("/kept/1").status_code == 200  # a pooled connection exists
    assert _terminate_service_connections(postgres_url) >= 1
    assert served.get("/kept/1").json() == {"id": 1, "label": "a"}
    assert _terminate_service_connections(postgres_url) >= 1
    assert [row["id"] for row in served.get("/kept").json()["kept"]] == [1, 2]


def test_a_write_on_a_dropped_connection_is_503_or_done_never_500(served: TestClient, postgres_url: str) -> None:
    assert served.get("/kept/1").status_code == 200
    assert _terminate_service_connections(postgres_url) >= 1
    response = served.post("/kept", json={"label": "c"})
    assert response.status_code in (201, 503), response.text
    if response.status_code == 503:
        assert response.headers["retry-after"] == "1"
        assert served.post("/kept", json={"label": "c"}).status_code == 201  # the retry succeeds
    assert [row["label"] for row in served.get("/kept").json()["kept"]] == ["a", "b", "c"]
