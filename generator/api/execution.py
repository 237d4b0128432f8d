"""The one execution path: every statement of the data plane runs through an `Executor`.

Reads run without a transaction round trip: PostgreSQL connections for reads are in autocommit (a single
statement is atomic on its own; `BEGIN` + `ROLLBACK` would cost two extra round trips per request), SQLite
reads run without `BEGIN`. On SQLite a read runs inline on the event loop (a local lookup takes tens of
microseconds, less than a hand-off to a worker thread); elsewhere, and for every write, in the thread pool.
A read whose connection the server dropped (failover, `pg_terminate_backend`) is retried once on a fresh
one. A write runs in one transaction; database errors become problems (`db_errors.problem_for`), a dropped
connection a 503: the client may retry, and nothing was committed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from generator.errors import Problem
from generator.models.engine import for_writes, reading

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

    async def read(self, work: Callable[[Connection], T]) -> T:
        if self.inline_reads:
            return self.read_now(work)
        return await run_in_threadpool(self.read_now, work)

    def read_now(self, work: Callable[[Connection], T]) -> T:
        """A value the database cannot compare (a date beyond its range, say) is the client's: a 400."""
        try:
            return reading(self.reader, work)
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None) or ""
            if not code.startswith("22"):
                raise
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "out of range"
            raise Problem(400, "Bad Request", f"The database cannot use a value of this query: {reason}") from None

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

