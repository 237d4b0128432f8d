"""The one execution path: every statement of the data plane runs through an `Executor`.

Reads run without a transaction round trip: PostgreSQL connections for reads are in autocommit (a single
statement is atomic on its own; `BEGIN` + `ROLLBACK` would cost two extra round trips per request), SQLite
reads run without `BEGIN`. On SQLite a read runs inline on the event loop (a local lookup takes tens of
microseconds, less than a hand-off to a worker thread); elsewhere, and for every write, in the thread pool.
A read whose connection the server dropped (failover, `pg_terminate_backend`) is retried once on a fresh
one. A write runs in one transaction; database errors become problems (`db_errors.problem_for`), a dropped
connection a 503: the client may retry, and nothing was committed.

With read replicas (DATABASE_REPLICA_URLS, generator/models/replicas.py) a read goes to the replica the
primary engine's `ReplicaSet` chooses (round robin over the healthy ones, none: the primary). A read that
fails there for any reason but a bad value (a lost connection, a table the replica has not replayed yet
after a generation, a recovery conflict) is run again on the primary: a read has no effect to repeat.
Everything in a write's transaction, `return=representation` reads included, runs on the primary, so a
request reads its own writes; the next request may read a replica that has not replayed them yet (at most
about DATABASE_REPLICA_MAX_LAG_SECONDS behind)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from generator.errors import Problem
from generator.models.engine import for_writes, reading
from generator.models.replicas import ReplicaSet, replicas_of

T = TypeVar("T")
RETRY_AFTER_S = 1


class Executor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        postgres = self.dialect == "postgresql"
        self.reader = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        self.writer = for_writes(engine)
        self.inline_reads = self.dialect == "sqlite"
        self.replicas = replicas_of(engine)  # None without DATABASE_REPLICA_URLS

    async def read(self, work: Callable[[Connection], T]) -> T:
        if self.inline_reads:
            return self.read_now(work)
        return await run_in_threadpool(self.read_now, work)

    def read_now(self, work: Callable[[Connection], T]) -> T:
        """A value the database cannot compare (a date beyond its range, say) is the client's: a 400."""
        try:
            if self.replicas is not None:
                return self._read_on_replica(self.replicas, work)
            return reading(self.reader, work)
        except DBAPIError as exc:
            if not _bad_value(exc):
                raise
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "out of range"
            raise Problem(400, "Bad Request", f"The database cannot use a value of this query: {reason}") from None

    def _read_on_replica(self, replicas: ReplicaSet, work: Callable[[Connection], T]) -> T:
        replica = replicas.choose()
        if replica is not None:
            try:
                with replica.reader.connect() as connection:
                    return work(connection)
            except DBAPIError as exc:
                if _bad_value(exc):
                    raise  # the primary would refuse it too
                replicas.failed(replica, exc)
        return reading(self.reader, work)

    async def write(self, work: Callable[[Connection], T], failed: Callable[[DBAPIError], Exception]) -> T:
        """Run `work` in one transaction; `failed` turns a database error into the problem to raise."""
        return await run_in_threadpool(self.write_now, work, failed)

    def write_now(self, work: Callable[[Connection], T], failed: Callable[[DBAPIError], Exception]) -> T:
        try:
            with self.writer.begin() as connection:
                return work(connection)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Problem(503, "Service Unavailable", "The database connection was lost; nothing was "
                              f"written, retry in {RETRY_AFTER_S} s", headers={"Retry-After": str(RETRY_AFTER_S)}
                              ) from None
            raise failed(exc) from None



def _bad_value(error: DBAPIError) -> bool:
    """SQLSTATE class 22 (data exception): a value of the request the database cannot use."""
    return (getattr(error.orig, "sqlstate", None) or "").startswith("22")
