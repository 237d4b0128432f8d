"""A throwaway PostgreSQL server for one test session, and streaming replicas of it.

Tests run against a real server because SQLite hides what matters on PostgreSQL (transactional DDL,
JSONB, timezone handling, strict types). Set ``TEST_POSTGRES_URL`` to a superuser URL to use an existing
server instead of starting one (then `start_replica` is unavailable: it needs the server's own machine).

`PostgresServer.start_replica()` makes a hot standby of a server we started: `pg_basebackup -R` (with a
replication slot, so the primary keeps the WAL a stopped replica needs to catch up) into a new data
directory, started on a free port as the same OS user. initdb's pg_hba.conf already lets local replication
connections in; the primary's start options state the rest (`wal_level`, `max_wal_senders`).
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
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60
# Speed over durability (a test server's data is thrown away); the same for primaries and replicas.
FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


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

    def wal_position(self) -> str:
        """The end of the WAL written so far, flushed (so replicas can receive it): the test server commits
        asynchronously (synchronous_commit=off), so a transaction that writes WAL (a logical message) and
        commits with synchronous_commit on forces the flush of all written before it."""
        with self._connect() as conn:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT pg_logical_emit_message(true, 'drg-test', 'flush')")
            return str(conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0])  # type: ignore[index]

    def start_replica(self) -> ReplicaServer:
        """A streaming replica of this server, started and accepting (read-only) connections."""
        if not self._owned or self._tmpdir is None or self._bindir is None:
            raise RuntimeError("A replica needs a server this session started (not TEST_POSTGRES_URL)")
        replica = ReplicaServer(self, self._bindir)
        try:
            replica.create()
        except BaseException:
            replica.destroy()
            raise
        return replica


class ReplicaServer:
    """A hot standby streaming from `primary`; databases have the primary's names (`url_for`)."""

    def __init__(self, primary: PostgresServer, bindir: Path) -> None:
        self.primary, self._bindir = primary, bindir
        self.tmpdir: Path | None = Path(tempfile.mkdtemp(prefix="test-pg-replica-"))
        self.slot = f"replica_{self.tmpdir.name.rsplit('-', 1)[-1].lower()}"
        self.port = free_port()
        self.url = primary.url.set(port=self.port)
        atexit.register(self.destroy)

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (created on the primary) on this replica."""
        return self.url.set(database=database).render_as_string(hide_password=False)

    def create(self) -> None:
        assert self.tmpdir is not None and self.primary._tmpdir is not None
        _own_for_postgres(self.tmpdir)
        _run_as_postgres(["mkdir", str(self.tmpdir / "sockets")])
        _run_as_postgres([str(self._bindir / "pg_basebackup"), "-D", str(self.tmpdir / "data"), "-R", "-X", "stream",
                          "-C", "-S", self.slot, "-c", "fast", "--no-sync", "-h", str(self.primary._tmpdir / "sockets"),
                          "-p", str(self.primary.url.port), "-U", "postgres"])
        self.start()

    def start(self) -> None:
        """Start (or restart) the standby and wait, bounded, until it accepts connections."""
        assert self.tmpdir is not None
        options = f"-p {self.port} -k {self.tmpdir / 'sockets'} -c listen_addresses=127.0.0.1 {FAST_OPTIONS}"
        _pg_ctl_start(self._bindir, self.tmpdir / "data", self.tmpdir / "server.log", options)
        _wait_for(self._connect, START_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the server, keeping its data directory: `start()` resumes streaming where it stopped."""
        if self.tmpdir is not None and (self.tmpdir / "data" / "postmaster.pid").exists():
            _run_as_postgres([str(self._bindir / "pg_ctl"), "-D", str(self.tmpdir / "data"), "stop", "-m", "fast",
                              "-w", "-t", str(START_TIMEOUT_S)])

    def destroy(self) -> None:
        """Stop, delete its files, and drop its slot on the primary (or the primary keeps WAL for it)."""
        tmpdir = self.tmpdir
        if tmpdir is None:
            return
        try:
            self.stop()
        finally:
            self.tmpdir = None
            shutil.rmtree(tmpdir, ignore_errors=True)
        if self.primary._tmpdir is not None:
            with self.primary._connect() as conn:
                conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                             "WHERE slot_name = %s", (self.slot,))

    def pause_replay(self) -> None:
        """Stop applying WAL (it is still received): the replica's data stays as it is now."""
        with self._connect() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout_s: float = 30.0) -> None:
        """Wait (bounded) until the replica has replayed all the primary has flushed by now."""
        target = self.primary.wal_position()
        deadline = time.monotonic() + timeout_s
        while True:
            with self._connect() as conn:
                row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not replay up to {target} within {timeout_s:g} s")
            time.sleep(0.05)

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


def _own_for_postgres(tmpdir: Path) -> None:
    if os.geteuid() == 0:
        try:
            shutil.chown(tmpdir, "postgres", "postgres")  # postgres refuses to run as root
        except LookupError:
            raise RuntimeError(
                "Running tests as root needs the 'postgres' user; `./dev test` installs the postgresql "
                "package, which creates it."
            ) from None


def _start_server(bindir: Path, tmpdir: Path) -> int:
    _own_for_postgres(tmpdir)
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
    # wal_level and max_wal_senders are PostgreSQL's defaults, stated because replicas need them.
    options = (f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 {FAST_OPTIONS} "
               "-c wal_level=replica -c max_wal_senders=10")
    _pg_ctl_start(bindir, data, log, options)
    return port


def _pg_ctl_start(bindir: Path, data: Path, log: Path, options: str) -> None:
    try:
        _run_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t",
                          str(START_TIMEOUT_S), "start"])
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{exc}\n--- server log ---\n{tail}") from None


def _run_as_postgres(args: list[str]) -> None:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, cwd="/", check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _wait_until_ready(server: PostgresServer) -> None:
    try:
        _wait_for(server._connect, START_TIMEOUT_S)
    except psycopg.OperationalError:
        server.stop()
        raise


def _wait_for(connect: Callable[[], psycopg.Connection], timeout_s: float) -> None:
    """Until a connection succeeds, for at most `timeout_s` (then the last error is raised)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connect().close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
