"""Prometheus metrics: requests per route template and method, generations, the database pool.

Multiprocess mode: with `PROMETHEUS_MULTIPROC_DIR` set before the process starts (prometheus-client reads it
when it is first imported), every worker writes its values to files in that folder and `/metrics`, whichever
worker answers it, adds them all up; without it each process keeps its own registry and `/metrics` shows that
process alone. Empty the folder when the server starts (deploy/gunicorn.conf.py does); a worker that stops
removes its live gauges (`close`).

Cost per request: one dict lookup for the labelled series (cached, so `labels()` runs once per series), a
counter increment and a histogram observation: a few microseconds (see README.md). Gauges (requests in
progress, the pool) are sampled by a thread and at each scrape, never set per request.

Labels stay bounded: `route` is a route template of the current generation (`/people/{id}`), one of the
service's own roots, or `(unmatched)`; `method` is one of the HTTP methods the service knows or `OTHER`;
`status` is the status code."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger("generator.operations")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GENERATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
MAX_SERIES = 10_000  # cached label children; far above what a generation's routes × methods × statuses give
CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


class Pool(Protocol):
    """What SQLAlchemy's QueuePool tells (other pools lack some of it: those gauges stay at 0)."""

    def size(self) -> int: ...
    def checkedout(self) -> int: ...
    def checkedin(self) -> int: ...
    def overflow(self) -> int: ...


def multiprocess_directory() -> str | None:
    """The folder of multiprocess mode, or None: only when prometheus-client itself was imported in that
    mode (the environment variable was set before), since values are created as files only then."""
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


class Metrics:
    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        if directory:
            os.makedirs(directory, exist_ok=True)
            registry: CollectorRegistry | None = None  # values live in files; `render` collects them
        else:
            registry = self.registry = CollectorRegistry()
            for collector in (ProcessCollector, PlatformCollector, GCCollector):
                collector(registry=registry)
        self.requests = Counter("drg_http_requests", "HTTP requests answered, by route template, method and "
                                "status", ("route", "method", "status"), registry=registry)
        self.latency = Histogram("drg_http_request_duration_seconds", "Time to answer an HTTP request, by route "
                                 "template and method", ("route", "method"), buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.in_progress = Gauge("drg_http_requests_in_progress", "HTTP requests being answered (sampled with "
                                 "the pool)", registry=registry, multiprocess_mode="livesum")
        self.active: Callable[[], int] = lambda: 0  # the observer's count, read when sampling
        self.generations = Counter("drg_generations", "Generations posted to this process or adopted from "
                                   "another, by outcome", ("source", "outcome"), registry=registry)
        self.generation_seconds = Histogram("drg_generation_duration_seconds", "Time to apply a posted generation "
                                            "or adopt another process's", ("source",), buckets=GENERATION_BUCKETS,
                                            registry=registry)
        self.pool = {name: Gauge(f"drg_db_pool_{name}", text, registry=registry, multiprocess_mode="livesum")
                     for name, text in (("size", "Connections the pool keeps (configured)"),
                                        ("checked_out", "Connections in use"),
                                        ("idle", "Connections open and waiting in the pool"),
                                        ("overflow", "Connections open beyond the pool size"))}
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._pool: Callable[[], Pool] | None = None
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request (the hot path: one dict lookup, two value updates)."""
        series = self._series.get((route, method, status))
        if series is None:
            series = self._new_series(route, method, status)
        series[0].inc()
        series[1].observe(seconds)

    def _new_series(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        if len(self._series) >= MAX_SERIES:
            self._series.clear()  # the children stay registered; only the shortcut is rebuilt
        series = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
        self._series[(route, method, status)] = series
        return series

    def generation(self, source: str, outcome: str, seconds: float | None = None) -> None:
        self.generations.labels(source, outcome).inc()
        if seconds is not None:
            self.generation_seconds.labels(source).observe(seconds)

    def instrument(self, runtime: Any) -> None:
        """Count and time the runtime's generations: `generate` (posted here) and `refresh` (adopted from
        another process). Wraps the two methods on this instance; the runtime reports no durations itself."""
        generate: Callable[..., Any] = runtime.generate
        refresh: Callable[[], bool] = runtime.refresh

        def generating(*args: Any, **kwargs: Any) -> Any:
            started = perf_counter()
            try:
                outcome = generate(*args, **kwargs)
            except Exception:
                self.generation("posted", "failed")
                raise
            if outcome.changed:
                self.generation("posted", "applied", perf_counter() - started)
            else:
                self.generation("posted", "unchanged")
            return outcome

        def refreshing() -> bool:
            started = perf_counter()
            try:
                adopted = refresh()
            except Exception:
                self.generation("adopted", "failed")
                raise
            if adopted:
                self.generation("adopted", "applied", perf_counter() - started)
            return adopted

        runtime.generate, runtime.refresh = generating, refreshing

    def watch_pool(self, pool: Callable[[], Pool]) -> None:
        """Report `pool()` (the engine's current pool: `dispose` replaces it) at every scrape."""
        self._pool = pool

    def sample_every(self, seconds: float) -> None:
        """Also sample the pool every `seconds` in a thread of its own (never per request), so in
        multiprocess mode every worker's figures are fresh whichever worker answers the scrape."""
        if seconds > 0 and self._sampler is None:
            self._stop.clear()
            self._sampler = threading.Thread(target=self._sample_until_stopped, args=(seconds,),
                                             name="drg-pool-metrics", daemon=True)
            self._sampler.start()

    def _sample_until_stopped(self, every_seconds: float) -> None:
        while not self._stop.wait(every_seconds):
            self.sample_pool()

    def sample_pool(self) -> None:
        """Set the sampled gauges: the pool's figures and the requests in progress."""
        self.in_progress.set(self.active())
        if self._pool is None:
            return
        pool = self._pool()
        for name, method in (("size", "size"), ("checked_out", "checkedout"), ("idle", "checkedin"),
                             ("overflow", "overflow")):
            reading = getattr(pool, method, None)
            if reading is not None:
                try:
                    self.pool[name].set(max(int(reading()), 0))  # QueuePool counts overflow from -size
                except Exception:  # noqa: BLE001 - a pool being disposed must not stop the sampler
                    log.debug("could not read the pool's %s", method)

    def render(self) -> bytes:
        """The exposition text: every worker's values in multiprocess mode, this process's otherwise."""
        self.sample_pool()
        if self.directory:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.directory)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop sampling; in multiprocess mode drop this process's live gauges (counters and histograms of
        a stopped worker keep counting in the totals, as Prometheus expects of counters)."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
            self._sampler = None
        if self.directory:
            multiprocess.mark_process_dead(os.getpid(), self.directory)
