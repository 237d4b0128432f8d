"""Restarts: a stopped process comes back from the saved payload without touching the database, and
refuses to start when the database no longer matches that payload. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.e2e.helpers import client, count_rows, last_run_log
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]


def test_restart_serves_the_saved_generation_and_rows(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path)
    payload = load_payload("default.json")
    with client(server) as http:
        generated = http.post("/generator", json=payload)
        assert generated.status_code == 201, generated.text
        digest = generated.json()["digest"]
        people: list[dict[str, Any]] = []
        for name in ("Ann", "Bea", "Cy"):
            created = http.post("/people", json={"name": name})
            assert created.status_code == 201, created.text
            people.append({"id": created.json()["id"], "name": name})
        assert http.put("/team/5", json={"name": "Blue"}).status_code == 201
        document_before = http.get("/openapi.json").json()
    generations_before = count_rows(database_url, "drg_generations")

    server.restart()  # SIGTERM, wait for exit, start again on the same database and payload file

    first_run = server.log_text()[: -len(last_run_log(server))]
    assert "Finished server process" in first_run, "the first process did not shut down gracefully on SIGTERM"
    restarted = last_run_log(server)
    assert f"Rebuilt generation {digest[:12]}" in restarted, restarted
    for forbidden in ("applied", "created", "CREATE TABLE", "No saved generation"):
        assert forbidden not in restarted, f"restart log mentions {forbidden!r}:\n{restarted}"
    assert count_rows(database_url, "drg_generations") == generations_before  # boot recorded nothing

    with client(server) as http:
        health = http.get("/health")
        assert health.status_code == 200 and health.json()["generation"] == digest, health.text
        listed = http.get("/people")
        assert listed.status_code == 200, listed.text
        assert listed.json()["people"] == people
        assert http.get("/team/5").json() == {"id": 5, "name": "Blue"}
        assert http.get("/openapi.json").json() == document_before  # the same API, rebuilt

        again = http.post("/generator", json=payload)
        assert again.status_code == 200, again.text
        assert again.json()["digest"] == digest
        assert again.json()["created_tables"] == []
        assert "already applied" in again.json()["message"]
        assert http.get("/people").json()["people"] == people

        # Writes still work after the restart.
        assert http.post("/people", json={"name": "Dee"}).status_code == 201
    assert count_rows(database_url, "drg_generations") == generations_before
    assert count_rows(database_url, "people") == 4


def _quoted(name: str) -> str:
    return rf"['\"]{re.escape(name)}['\"]"


def test_restart_refuses_a_database_that_no_longer_matches(
    database_url: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path)
    with client(server) as http:
        assert http.post("/generator", json=load_payload("default.json")).status_code == 201
        assert http.post("/people", json={"name": "Ann"}).status_code == 201
    server.stop()

    # While it is stopped, someone drops a column of one table and a whole other table.
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE people DROP COLUMN name"))
            connection.execute(text('DROP TABLE "order"'))
    finally:
        engine.dispose()

    with pytest.raises(RuntimeError, match="exited with code") as failure:
        server.start()
    code = re.search(r"exited with code (-?\d+)", str(failure.value))
    assert code is not None and int(code.group(1)) > 0, str(failure.value)

    log = last_run_log(server)
    lines = log.splitlines()
    # Every difference is reported, each naming its table (and column).
    assert any(re.search(_quoted("people"), line) and re.search(_quoted("name"), line) for line in lines), (
        f"no log line names table 'people' and column 'name':\n{log}"
    )
    assert any(re.search(_quoted("order"), line) for line in lines), f"no log line names table 'order':\n{log}"

    engine = create_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        columns = {c["name"] for c in inspect(engine).get_columns("people")}
    finally:
        engine.dispose()
    # The refused start changed nothing: it did not re-create what was dropped.
    assert "order" not in tables and "name" not in columns, (tables, columns)
    assert {"people", "team", "required", "people_team"} <= tables
