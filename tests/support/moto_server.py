"""AWS APIs (S3, KMS, Secrets Manager, RDS) as moto's real HTTP server on loopback, one per test session.

Tests talk to it with boto3 over HTTP exactly as production talks to AWS: only the endpoint differs
(`AWS_ENDPOINT_URL`, which boto3 reads itself). `reset()` empties every backend between tests that need a
clean account; `calls()` reads the server's request log so a test can count, say, KMS calls."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.postgres import free_port

READY_TIMEOUT_S = 30.0

# Fake credentials: moto accepts any; set so boto3 never looks for real ones (or at instance metadata).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class MotoServer:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """What a process (or boto3 in this one) needs to reach this server instead of AWS."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url}

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def request_lines(self) -> list[str]:
        """The server's access log so far (`"POST / HTTP/1.1" 200 -` lines with the target's action)."""
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_moto(workdir: Path) -> MotoServer:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "moto.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS},
        )
    server = MotoServer(f"http://127.0.0.1:{port}", log_path, process)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited at start: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{server.url}/moto-api/", timeout=1).status_code < 500:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto_server did not answer within {READY_TIMEOUT_S:.0f} s")
