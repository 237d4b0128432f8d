"""The generation feed: wakes `Runtime` when another process (a uvicorn worker, a replica) may have recorded
a generation, so it adopts it (`Runtime.refresh`). A wake-up only says "look": the consumer reads the newest
row of `drg_generations` and decides, so a spurious or repeated one costs one indexed read.

    PostgreSQL  a dedicated psycopg connection in autocommit LISTENs on `ddl.CHANNEL`, which every
                generation's transaction notifies at commit: the others wake within milliseconds.
    always      a wake-up every `poll_seconds` as well (the only one on SQLite or with listening off), and one
                right after (re)connecting: notifications sent while the listener was disconnected are lost.

The listener waits in short slices, so `close()` returns promptly. A dropped connection is logged and retried
with backoff while polling carries on; the feed never stops the process. Its connection shows as
`application_name = drg-generation-feed` in `pg_stat_activity`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine

from generator.models.ddl import CHANNEL
from generator.models.engine import new_connection

log = logging.getLogger(__name__)
APPLICATION_NAME = "drg-generation-feed"
SLICE_S = 0.2  # the longest `close()` waits for a listener blocked on the socket
BACKOFF_S = (0.5, 30.0)  # the first and the longest wait before reconnecting a dropped listener
CONNECT_TIMEOUT_S = 5


class GenerationFeed:
    """Calls `on_wake()` in a thread of its own (building an app is CPU work: not on the event loop)."""

    def __init__(self, engine: Engine, poll_seconds: float, on_wake: Callable[[], object], *,
                 listen: bool = True) -> None:
        self.engine, self.poll_seconds, self.on_wake = engine, poll_seconds, on_wake
        self.listen = listen and engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self.listening = threading.Event()  # set while the listener is connected and LISTENing (tests wait on it)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = BACKOFF_S[0]

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="drg-generation-feed", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop; returns within about `SLICE_S`, or once a wake-up in progress (a build) has finished."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        listener: psycopg.Connection[Any] | None = None
        reconnect_at = 0.0
        next_poll = time.monotonic() + self.poll_seconds
        try:
            while not self._stopping.is_set():
                if self.listen and listener is None and time.monotonic() >= reconnect_at:
                    listener = self._connect()
                    if listener is None:
                        reconnect_at = time.monotonic() + self._backoff
                        self._backoff = min(self._backoff * 2, BACKOFF_S[1])
                    else:
                        self._wake()  # catch up with what was recorded while not listening
                        next_poll = time.monotonic() + self.poll_seconds
                until = next_poll if listener is not None or not self.listen else min(next_poll, reconnect_at)
                try:
                    notified = self._wait(listener, until)
                except Exception as exc:  # noqa: BLE001 - whatever broke the listener, polling carries on
                    log.warning("The generation feed lost its PostgreSQL connection (%s); polling every %g s "
                                "until it reconnects", _first_line(exc), self.poll_seconds)
                    listener = _discard(listener)
                    self.listening.clear()
                    reconnect_at = time.monotonic() + self._backoff
                    continue
                if notified or time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_seconds
                    self._wake()
        finally:
            _discard(listener)
            self.listening.clear()

    def _connect(self) -> psycopg.Connection[Any] | None:
        connection = None
        try:
            # As the pool connects (a fresh IAM token, the secret's current password), with keepalives so a
            # silently dead peer is noticed within about a minute (polling covers the meantime).
            connection = new_connection(self.engine, autocommit=True, application_name=APPLICATION_NAME,
                                        connect_timeout=CONNECT_TIMEOUT_S, keepalives=1, keepalives_idle=30,
                                        keepalives_interval=10, keepalives_count=3)
            connection.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:  # noqa: BLE001 - the server down, refused, ...: polling carries on
            _discard(connection)
            log.warning("The generation feed cannot LISTEN (%s); polling every %g s, retrying in %g s",
                        _first_line(exc), self.poll_seconds, self._backoff)
            return None
        log.info("Listening for generations on PostgreSQL channel %s", CHANNEL)
        self._backoff = BACKOFF_S[0]
        self.listening.set()
        return connection

    def _wait(self, listener: psycopg.Connection[Any] | None, until: float) -> bool:
        """Wait until `until` (monotonic) or stop; True as soon as a notification arrives."""
        while not self._stopping.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            if listener is None:
                self._stopping.wait(remaining)
                continue
            for _ in listener.notifies(timeout=min(remaining, SLICE_S), stop_after=1):
                return True
        return False

    def _wake(self) -> None:
        try:
            self.on_wake()
        except Exception:  # a database blip or a bad generation must not stop the feed; the next wake retries
            log.exception("Could not check for a newer generation")


def _discard(connection: psycopg.Connection[Any] | None) -> None:
    if connection is not None:
        try:
            connection.close()
        except psycopg.Error:
            pass


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
