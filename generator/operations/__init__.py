"""Operations: request ids and JSON logs, Prometheus metrics, readiness and version (see README.md).

`Operations` is what the dispatcher holds: `observe` wraps each HTTP request, `serve` answers `/ready`,
`/version` and `/metrics`, `opens` says which of them a request without credentials may reach, and
`start`/`close` run with the server's lifespan."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from generator.operations.metrics import Metrics, multiprocess_directory
from generator.operations.probes import Probes, Served
from generator.operations.requests import STATE_KEY, RequestObserver, name_route

__all__ = ["STATE_KEY", "Operations", "OperationsSettings", "name_route"]
CREDENTIAL_HEADERS = (b"authorization", b"x-auth-token")
PROBES = frozenset({"/health", "/ready"})  # open in production only with PUBLIC_PROBES=true


@dataclass(frozen=True)
class OperationsSettings:
    public_metrics: bool = False  # production: /metrics and /version without credentials
    # Production: /health and /ready without credentials. Off by default (every route requires authentication
    # in production): probes can send a service token (Kubernetes httpHeaders; the image's health check does).
    public_probes: bool = False
    ready_timeout_seconds: float = 2.0  # /ready: how long the database may take to answer SELECT 1
    pool_sample_seconds: float = 5.0  # how often each worker reports its connection pool
    commit: str = ""  # the source commit of this build, shown by /version

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperationsSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            public_metrics=env.get("PUBLIC_METRICS", "").strip().lower() in ("1", "true", "yes", "on"),
            public_probes=env.get("PUBLIC_PROBES", "").strip().lower() in ("1", "true", "yes", "on"),
            ready_timeout_seconds=float(env.get("READY_TIMEOUT_SECONDS", defaults.ready_timeout_seconds)),
            pool_sample_seconds=float(env.get("POOL_METRICS_SECONDS", defaults.pool_sample_seconds)),
            commit=env.get("DRG_COMMIT", "").strip(),
        )


class Operations:
    def __init__(self, runtime: Any, roots: Iterable[str], settings: OperationsSettings | None = None,
                 metrics: Metrics | None = None) -> None:
        """`runtime` gives the engine, the generation served (`current.generation`) and the generation
        methods to count; `roots` are the service's own first path segments, for bounded labels."""
        self.settings = settings or OperationsSettings.from_env()
        self.metrics = metrics or Metrics(multiprocess_directory())
        self.metrics.instrument(runtime)
        self.metrics.watch_pool(lambda: runtime.engine.pool)
        self.observe = RequestObserver(self.metrics, [*roots, *(p.strip("/") for p in Probes.PATHS)])
        self.metrics.active = lambda: self.observe.active
        self.serve = Probes(Served(runtime.engine, lambda: runtime.current.generation), self.metrics,
                            public_metrics=self.settings.public_metrics,
                            ready_timeout=self.settings.ready_timeout_seconds, commit=self.settings.commit)
        self.paths = Probes.PATHS
        self.open_paths = ((PROBES if self.settings.public_probes else frozenset())
                           | (Probes.PATHS - PROBES if self.settings.public_metrics else frozenset()))

    def opens(self, scope: Scope) -> bool:
        """Whether a request the authenticator refused may go on, as anonymous: a GET or HEAD of an open
        path that sent no credentials at all (credentials that are sent are checked, and refused if wrong,
        on every route)."""
        return (scope["path"] in self.open_paths and scope["method"] in ("GET", "HEAD")
                and not any(key in CREDENTIAL_HEADERS for key, _ in scope["headers"]))

    def start(self) -> None:
        self.metrics.sample_every(self.settings.pool_sample_seconds)

    def close(self) -> None:
        self.metrics.close()

