"""Engines for the two supported databases, set up so generation DDL is all-or-nothing on both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from generator.codec import dumps_text, loads

WRITE_OPTION = "drg_write"
T = TypeVar("T")


def create_database_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and explicit BEGIN so DDL joins the transaction."""
    parsed = make_url(url)
    # hide_parameters: values never reach logs or error messages (they may be personal or, later, secret)
    options: dict[str, Any] = {"json_serializer": dumps_text, "json_deserializer": loads, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **options)
        _sqlite_setup(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg2", "default", ""):
        parsed = parsed.set(drivername="postgresql+psycopg")
    # No pool_pre_ping: it costs a round trip per request. A dropped connection is handled where it
    # surfaces instead (`reading` retries once; writes answer 503), see `reading`.
    return create_engine(parsed, pool_size=10, max_overflow=20, pool_recycle=1800, **options)


def _sqlite_setup(engine: Engine) -> None:
    """SQLAlchemy's documented recipe: stop pysqlite's implicit BEGIN handling and emit our own, so DDL
    joins the transaction (pysqlite would otherwise commit before it)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        """Writes take the write lock up front; reads run without BEGIN: each of our reads is a single
        statement, atomic on its own, and a BEGIN/ROLLBACK pair would double its cost."""
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def reading(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run a read, retrying once on a connection the server dropped (pg_terminate_backend, a failover, a
    restart). SQLAlchemy invalidates the whole pool when it sees a disconnect, so the retry gets a fresh
    connection; a read has no effect to repeat. Cheaper than `pool_pre_ping`'s round trip per request."""
    try:
        with engine.connect() as connection:
            return work(connection)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as connection:
        return work(connection)


def for_writes(engine: Engine) -> Engine:
    """The same engine (and pool) for transactions that will write.

    On SQLite a write transaction must take the write lock when it begins (BEGIN IMMEDIATE): a deferred
    transaction that reads and then writes fails at once with "database is locked" if another connection
    committed in between, since the busy timeout does not cover that upgrade. Elsewhere it changes nothing."""
    return engine.execution_options(**{WRITE_OPTION: True})

