"""Read replicas: PostgreSQL streaming standbys that serve the generated routes' reads (DATABASE_REPLICA_URLS).

`ReplicaSet.choose()` names the replica for the next read: the next healthy one, round robin; None when
none is healthy (the read goes to the primary). Only the data plane's reads ask (api/execution.py); writes,
reads inside a write's transaction, generations and the control plane use the primary engine directly.

Health is judged at most every `check_seconds`, in a short-lived thread that a read starts when a check is
due: a request never waits for a check, an idle process makes none, and there is no thread to stop.

- Lag. Each check samples the primary's flushed WAL position (`pg_current_wal_flush_lsn()`: what it can
  send) and then each replica's replayed position (`pg_last_wal_replay_lsn()`). A replica has caught up
  with a sample once it has replayed up to it; its lag is the age of the newest sample it has caught up
  with, so an idle primary whose position does not move means lag 0 (`now() -
  pg_last_xact_replay_timestamp()` would grow there without any real lag), and a replica whose replay is
  slow or paused ages past `max_lag_seconds` and is skipped until it catches up. Ages count from the
  newest sample: when the primary cannot be sampled, a replica that had replayed all it had stays in use.
- Failures. A replica that refuses connections or fails its check is skipped until a later check
  succeeds; a read that loses its connection on a replica marks it at once (`failed`), and the read is
  retried on the primary by the caller.

So a read on a replica sees the primary as it was at most about `max_lag_seconds + check_seconds` ago.
Read-your-writes holds within a request (a write and the reads that follow it share the write's
transaction on the primary), not across requests: the next request's read may go to a replica that has
not replayed the write yet."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
PRIMARY_POSITION = text("SELECT pg_current_wal_flush_lsn()::text")
REPLICA_POSITION = text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
# SQLSTATEs of a server that is gone or going: connection exceptions (class 08), shut down (57P01, 57P02),
# starting up (57P03), too many connections (53300). Not a cancelled statement (57014): that is the query's.
UNAVAILABLE = ("08", "57P01", "57P02", "57P03", "53300")
DISPOSE_WAIT_S = 10.0  # longer than a check: one connect per server, each with connect_timeout=3


@dataclass
class Replica:
    name: str  # host:port/database, for logs (never the password)
    engine: Engine
    reader: Engine  # the same pool, in autocommit: a read is one statement
    healthy: bool = False
    reason: str = "not checked yet"
    lag_seconds: float | None = None


class ReplicaSet:
    """The replicas of one primary engine, and which of them reads may use now (see the module's docs)."""

    def __init__(self, primary: Engine, replicas: list[Engine], *, max_lag_seconds: float,
                 check_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._primary = weakref.ref(primary)  # the registry's key: a strong reference would keep it alive
        self.replicas = [Replica(_name(e), e, e.execution_options(isolation_level="AUTOCOMMIT")) for e in replicas]
        self.max_lag_seconds, self.check_seconds, self.clock = max_lag_seconds, check_seconds, clock
        self.healthy: tuple[Replica, ...] = ()
        self._turn = itertools.count()
        self._next_check = 0.0
        self._checking = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque()  # (when, primary's flushed position), oldest first

    def choose(self) -> Replica | None:
        """The replica for one read, or None for the primary. Costs a clock read and a counter step."""
        now = self.clock()
        if now >= self._next_check:
            self._check_soon(now)
        healthy = self.healthy
        if not healthy:
            return None
        return healthy[next(self._turn) % len(healthy)]

    def failed(self, replica: Replica, error: DBAPIError) -> None:
        """A read failed on `replica` (the caller retries it on the primary). A lost or refused connection
        takes the replica out of use until a check finds it well; other errors (a table a generation created
        that the replica has not replayed yet, a query cancelled by a recovery conflict) do not."""
        code = getattr(error.orig, "sqlstate", None) or ""
        if error.connection_invalidated or not code or code.startswith(UNAVAILABLE):
            self._mark(replica, False, f"a read failed: {_first_line(error)}")
        else:
            log.debug("A read failed on replica %s (%s); retried on the primary", replica.name, code)

    def check(self) -> None:
        """Sample the primary's position, then judge every replica against the samples kept. Waits for a
        check under way (one at a time: the samples are not shared between threads)."""
        with self._checking:
            self._check()

    def _check(self) -> None:
        started = self.clock()
        try:
            with _engine(self._primary).connect() as connection:
                position = _lsn(connection.execute(PRIMARY_POSITION).scalar())
            self._samples.append((started, position))
        except (DBAPIError, ValueError) as exc:
            log.warning("Cannot read the primary's WAL position for replica lag: %s", _first_line(exc))
        self._forget_old()
        for replica in self.replicas:
            self._judge(replica)

    def close(self) -> None:
        """Before the primary is disposed of for good: no check starts any more, and one under way (which
        holds a connection of the primary's pool too) finishes before the replicas' pools are disposed of."""
        self._next_check = float("inf")
        self.dispose()

    def dispose(self) -> None:
        """Dispose of the replicas' pools once a check under way has finished: its connection would otherwise
        go back to the disposed pool, never to be closed (bounded wait: a check's connects time out sooner)."""
        waited = self._checking.acquire(timeout=DISPOSE_WAIT_S)
        try:
            for replica in self.replicas:
                replica.engine.dispose()
        finally:
            if waited:
                self._checking.release()

    def _check_soon(self, now: float) -> None:
        if not self._checking.acquire(blocking=False):
            return  # a check is running
        self._next_check = now + self.check_seconds
        try:
            threading.Thread(target=self._check_then_release, name="drg-replica-check", daemon=True).start()
        except BaseException:
            self._checking.release()
            raise

    def _check_then_release(self) -> None:
        try:
            self._check()
        except Exception:  # a thread's exception would only be printed; keep the last verdicts instead
            log.exception("Checking the read replicas failed")
        finally:
            self._checking.release()

    def _forget_old(self) -> None:
        """Keep the samples a lag within the bound could refer to, and the newest older one."""
        if not self._samples:
            return
        horizon = self._samples[-1][0] - self.max_lag_seconds - 2 * self.check_seconds
        while len(self._samples) > 1 and self._samples[1][0] < horizon:
            self._samples.popleft()

    def _judge(self, replica: Replica) -> None:
        try:
            with replica.reader.connect() as connection:
                recovering, replayed = connection.execute(REPLICA_POSITION).one()
        except DBAPIError as exc:
            self._mark(replica, False, f"unreachable: {_first_line(exc)}")
            return
        if not recovering:
            self._mark(replica, False, "not a standby (pg_is_in_recovery() is false: promoted, or not a replica)")
            return
        if replayed is None or not self._samples:
            self._mark(replica, False, "its replay position or the primary's is unknown")
            return
        replica.lag_seconds = lag = self._lag(_lsn(replayed))
        if lag > self.max_lag_seconds:
            self._mark(replica, False, f"behind the primary by more than {self.max_lag_seconds:g} s")
        else:
            self._mark(replica, True, f"lag at most {lag:.2f} s")

    def _lag(self, replayed: int) -> float:
        """The age of the newest sample `replayed` reaches, counted from the newest sample; infinite if none."""
        newest = self._samples[-1][0]
        for when, position in reversed(self._samples):
            if replayed >= position:
                return newest - when
        return float("inf")

    def _mark(self, replica: Replica, healthy: bool, reason: str) -> None:
        if healthy != replica.healthy:
            if healthy:
                log.info("Read replica %s is in use (%s)", replica.name, reason)
            else:
                log.warning("Read replica %s is skipped: %s", replica.name, reason)
        replica.healthy, replica.reason = healthy, reason
        self.healthy = tuple(r for r in self.replicas if r.healthy)


_REGISTRY: weakref.WeakKeyDictionary[Engine, ReplicaSet] = weakref.WeakKeyDictionary()


def register(primary: Engine, replicas: ReplicaSet) -> None:
    """Attach `replicas` to the primary engine: whatever is built from that engine (each generation's
    executor) finds them with `replicas_of`. Disposing of the primary disposes of the replicas' pools."""
    _REGISTRY[primary] = replicas

    def _disposed(_connection: object) -> None:
        replicas.dispose()

    event.listen(primary, "engine_disposed", _disposed)


def replicas_of(primary: Engine) -> ReplicaSet | None:
    return _REGISTRY.get(primary)


def _engine(reference: weakref.ref[Engine]) -> Engine:
    engine = reference()
    if engine is None:
        raise ValueError("the primary engine is gone")
    return engine


def _lsn(value: str | None) -> int:
    """A WAL position `16/B374D848` as a number."""
    if not value:
        raise ValueError("no WAL position")
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _name(engine: Engine) -> str:
    url = engine.url
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or ["(no message)"])[0]
