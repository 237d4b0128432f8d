"""A throwaway PostgreSQL server for one test session.

Tests run against a real server because SQLite hides what matters on PostgreSQL (transactional DDL,
JSONB, timezone handling, strict types). Set ``TEST_POSTGRES_URL`` to a superuser URL to use an existing
server instead of starting one.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60


class PostgresServer:
    """A PostgreSQL server that hands out one fresh database per caller."""

    def __init__(self, url: URL, tmpdir: Path | None = None, bindir: Path | None = None) -> None:
        self.url = url.set(drivername="postgresql+psycopg", database=url.database or "postgres")
        self._tmpdir = tmpdir  # set only when we own the server process
        self._bindir = bindir
        self._owned = tmpdir is not None
        self._created: list[str] = []
        atexit.register(self.stop)  # a crashed session must not leave a postgres behind

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        with self._connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        """Stop our own server and delete its files; on a borrowed server, drop what we created."""
        if not self._owned:
            self._drop_created()
            return
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is None or self._bindir is None:
            return  # already stopped
        pg_ctl = str(self._bindir / "pg_ctl")
        _run_as_postgres([pg_ctl, "-D", str(tmpdir / "data"), "stop", "-m", "fast", "-w"])
        shutil.rmtree(tmpdir, ignore_errors=True)

    def _drop_created(self) -> None:
        created, self._created = self._created, []
        if not created:
            return
        with self._connect() as conn:
            for name in created:
                stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                conn.execute(stmt)

    def _connect(self) -> psycopg.Connection:
        libpq_url = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(libpq_url, autocommit=True, connect_timeout=10)


def start_postgres() -> PostgresServer:
    """Return the server named by ``TEST_POSTGRES_URL``, or start a private one."""
    external = os.environ.get("TEST_POSTGRES_URL")
    if external:
        return PostgresServer(make_url(external))
    bindir = find_bindir()
    tmpdir = Path(tempfile.mkdtemp(prefix="test-pg-"))
    try:
        port = _start_server(bindir, tmpdir)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    url = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=port)
    server = PostgresServer(url, tmpdir, bindir)
    _wait_until_ready(server)
    return server


def find_bindir() -> Path:
    """Pick the newest installed PostgreSQL; failing loudly beats skipping half the suite."""
    found = [Path(d) for d in glob.glob(BIN_GLOB) if (Path(d) / "initdb").exists()]
    if not found:
        raise RuntimeError(
            f"No PostgreSQL server binaries found in {BIN_GLOB}. Run `./dev test`, which installs them, "
            "or set TEST_POSTGRES_URL to a superuser URL of a running server."
        )
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def free_port() -> int:
    """Ask the kernel for an unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(bindir: Path, tmpdir: Path) -> int:
    if os.geteuid() == 0:
        try:
            shutil.chown(tmpdir, "postgres", "postgres")  # postgres refuses to run as root
        except LookupError:
            raise RuntimeError(
                "Running tests as root needs the 'postgres' user; `./dev test` installs the postgresql "
                "package, which creates it."
            ) from None
    data, sockets, log = tmpdir / "data", tmpdir / "sockets", tmpdir / "server.log"
    _run_as_postgres(["mkdir", str(sockets)])
    # A fixed locale keeps sorting and initdb independent of the host's LANG.
    _run_as_postgres(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]
    )
    port = free_port()
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        _run_as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ]
        )
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{exc}\n--- server log ---\n{tail}") from None
    return port


def _run_as_postgres(args: list[str]) -> None:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, cwd="/", check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _wait_until_ready(server: PostgresServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            server._connect().close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.1)
