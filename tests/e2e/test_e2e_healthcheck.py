"""The container's health check (`python -m generator.healthcheck`) against a real production server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import TokenLiveServer
from tests.support.live_server import REPO_ROOT
from tests.support.postgres import free_port

TOKEN = "health-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenLiveServer]:
    workdir = tmp_path_factory.mktemp("health")
    live = TokenLiveServer(f"sqlite:///{workdir}/db.sqlite3", workdir,
                           {"APP_ENV": "production", "AUTH_TOKENS": TOKEN}, token=TOKEN)
    live.start()
    yield live
    live.stop()


def check(url: str, token: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "AUTH_TOKENS"} | {"HEALTHCHECK_URL": f"{url}/health"}
    if token is not None:
        env["AUTH_TOKENS"] = token
    return subprocess.run([sys.executable, "-m", "generator.healthcheck"], cwd=REPO_ROOT, env=env,
                          timeout=30).returncode


def test_healthy_with_the_service_token(server: TokenLiveServer) -> None:
    assert check(server.url, TOKEN) == 0


def test_healthy_without_a_token_when_the_service_asks_for_one(server: TokenLiveServer) -> None:
    assert check(server.url, None) == 0  # a 401 proves the process serves


def test_unhealthy_with_a_wrong_token_or_no_server(server: TokenLiveServer, tmp_path: Path) -> None:
    assert check(server.url, "wrong") == 1
    assert check(f"http://127.0.0.1:{free_port()}", TOKEN) == 1
