"""The service as a real uvicorn process, for tests that need what only a process shows.

Start-up from the environment, restarts that rebuild from the saved payload, and browsers need a real
server; in-process test clients cannot show those.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn, Protocol

import httpx

from tests.support.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class LiveServer:
    """One ``uvicorn wsgi:app`` process; settings survive ``restart()``, the port may change."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str] | None = None,
                 probe_headers: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.env = dict(env or {})
        self.log_path = workdir / "server.log"
        self.probe_headers = dict(probe_headers or {})  # e.g. a bearer token for a production server
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the process and return once ``GET /health`` answers 200."""
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "uvicorn", "wsgi:app", "--host", "127.0.0.1", "--port", str(port)]
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self._environment(), stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_healthy()

    def stop(self) -> None:
        """SIGTERM for a graceful shutdown; SIGKILL if it takes longer than 10 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start again with the same database, workdir and environment."""
        self.stop()
        self.start()

    def log_text(self) -> str:
        """Everything the process (and earlier runs of it) wrote to stdout and stderr."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            APP_ENV="development",
            DATABASE_URL=self.database_url,
            DATA_DIR=str(self.workdir / "data"),
            PAYLOAD_PATH=str(self.workdir / "payload.json"),
            PYTHONUNBUFFERED="1",  # so log_text() shows output as it happens
        )
        env.update(self.env)
        return env

    def _wait_until_healthy(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail(f"server exited with code {self._process.returncode} before it was healthy")
            try:
                # trust_env=False: a proxy from the environment must not intercept loopback calls.
                response = httpx.get(f"{self.url}/health", headers=self.probe_headers, timeout=1.0, trust_env=False)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        self._fail(f"GET {self.url}/health did not answer 200 within {READY_TIMEOUT_S:.0f} s")

    def _fail(self, reason: str) -> NoReturn:
        tail = "\n".join(self.log_text().splitlines()[-60:])
        raise RuntimeError(f"{reason}\n--- server log ({self.log_path}) ---\n{tail}")


class StartLiveServer(Protocol):
    """Signature of the ``live_server`` fixture."""

    def __call__(self, database_url: str, workdir: Path, env: dict[str, str] | None = None,
                 probe_headers: dict[str, str] | None = None) -> LiveServer: ...
