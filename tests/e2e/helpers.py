"""Shared helpers for the end-to-end tests: HTTP clients, problem checks, log slicing, start-up runs.

Everything here talks to a real ``uvicorn wsgi:app`` process over loopback; nothing is mocked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, table

from tests.support.live_server import REPO_ROOT, LiveServer
from tests.support.postgres import free_port

PROBLEM_JSON = "application/problem+json"
EXIT_TIMEOUT_S = 30.0


def client(server: LiveServer, token: str | None = None) -> httpx.Client:
    """An HTTP client for ``server``; ``trust_env=False`` so no proxy intercepts loopback calls."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=10.0, trust_env=False)


def exact_json(response: httpx.Response) -> Any:
    """The response body with numbers kept exact (``Decimal``), to compare without float rounding."""
    return json.loads(response.content, parse_float=Decimal)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 7807 problem with ``status``; return its body."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, f"content-type {content_type!r}: {response.text}"
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert isinstance(body["title"], str) and body["title"], body
    return body


def last_run_log(server: LiveServer) -> str:
    """The log of the latest process only: LiveServer appends every run, each after a ``--- <command>`` line."""
    runs = re.split(r"^--- .*uvicorn wsgi:app.*$", server.log_text(), flags=re.MULTILINE)
    assert len(runs) >= 2, f"no run marker in the log:\n{server.log_text()}"
    return runs[-1]


def count_rows(database_url: str, table_name: str) -> int:
    """Rows in ``table_name``, read straight from the database (not through the service)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table(table_name))).scalar_one())
    finally:
        engine.dispose()


def server_environment(workdir: Path, database_url: str, **overrides: str | None) -> dict[str, str]:
    """The environment LiveServer gives the process; an override of ``None`` removes the variable."""
    env = dict(os.environ)
    env.update(APP_ENV="development", DATABASE_URL=database_url, DATA_DIR=str(workdir / "data"),
               PAYLOAD_PATH=str(workdir / "payload.json"), PYTHONUNBUFFERED="1")
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_until_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start ``uvicorn wsgi:app`` and wait for it to exit on its own; a server that keeps running fails
    the test (``subprocess.run`` kills it at the timeout)."""
    command = [sys.executable, "-m", "uvicorn", "wsgi:app", "--host", "127.0.0.1", "--port", str(free_port())]
    try:
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=EXIT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        raise AssertionError(f"the server did not exit within {EXIT_TIMEOUT_S:.0f} s:\n{output}") from None


class TokenLiveServer(LiveServer):
    """A LiveServer whose readiness probe sends a bearer token.

    ``LiveServer`` polls ``GET /health`` without credentials, which a production server (AUTH_TOKENS set)
    answers with 401 forever; this probe authenticates so production processes can be started."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str], token: str) -> None:
        super().__init__(database_url, workdir, env, {"Authorization": f"Bearer {token}"})
        self.token = token
