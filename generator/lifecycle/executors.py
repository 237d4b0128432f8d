"""Executors: what runs a task. Named by a task's `executorRef`, configured in the JSON file that
`EXECUTORS_CONFIG` names:

    {"generator": {"type": "generator"},                                     # always there, built in
     "prod": {"type": "generator", "url": "https://prod.example/generator", "token": "..."},
     "deployer": {"type": "webhook", "url": "https://ci.example/hooks/odm", "token": "..."}}

- `generator` applies `configurations.payload` (a generation payload) through the core's all-or-nothing path:
  on this service (`Runtime.generate`), or, with `url`, by POSTing it to another instance's `/generator` with
  `token` as `Authorization: Bearer`. It runs in a worker thread and completes the task itself.
- `webhook` POSTs the task (with its `id` and `callbackRef`) to `url`, `token` as `Authorization: Bearer`,
  and waits for the executor's callback (`PATCH /tasks/{id}/status?action=STOP`).
- A plugin adds executors by name: the proposed hook `drg_lifecycle_executors(settings, runtime)` returns a
  mapping of names to objects with `run(order, secrets)` (see `Executor`); `Registry.add` does the same in code.

Secrets for an executor arrive in `x-odm-<executor>-executor-secret-<type>` request headers; they are handed to
that executor's `run` (and sent on as the same headers), kept in memory only while the activity runs, never
stored, never logged, never put in a task's errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy.exc import DBAPIError

from generator.errors import InvalidPayload, StartupError
from generator.identity import Principal
from generator.lifecycle.states import FAILED, PROCESSED
from generator.models.ddl import SchemaConflict

log = logging.getLogger(__name__)
TYPES = ("generator", "webhook")
REMOTE_TIMEOUT_S = 120.0  # a remote generation of hundreds of tables takes seconds, not minutes
WEBHOOK_TIMEOUT_S = 10.0  # the webhook only has to accept the task


@dataclass(frozen=True)
class TaskOrder:
    """A task handed to an executor: `task` is its public view (id, activityId, template, configurations...),
    with `${variables}` resolved."""

    id: int
    activity_id: int
    executor: str
    template: Any
    configurations: dict[str, Any]
    task: dict[str, Any]


@dataclass(frozen=True)
class TaskResult:
    status: str  # PROCESSED | FAILED
    results: dict[str, Any] | None = None
    errors: str | None = None


class Executor(Protocol):
    def run(self, order: TaskOrder, secrets: Mapping[str, str]) -> TaskResult | None:
        """Run (or hand over) the task, in a worker thread. A `TaskResult`: done. None: the executor calls
        back later. An exception fails the task with its message (which must not contain secrets)."""


def secret_prefix(name: str) -> str:
    return f"x-odm-{name.lower()}-executor-secret-"


class GeneratorExecutor:
    """Applies `configurations.payload`: here through `runtime.generate`, or on the instance at `url`."""

    def __init__(self, name: str, runtime: Any, url: str | None = None, token: str | None = None) -> None:
        self.name, self.runtime, self.url, self.token = name, runtime, url, token

    def run(self, order: TaskOrder, secrets: Mapping[str, str]) -> TaskResult:
        payload = order.configurations.get("payload")
        if not isinstance(payload, dict):
            return TaskResult(FAILED, errors="configurations.payload must be a generation payload (a JSON object)")
        return self._remote(payload, secrets) if self.url else self._local(payload, order)

    def _local(self, payload: dict[str, Any], order: TaskOrder) -> TaskResult:
        from generator.products import check_generation, invalidate, record_generation_in  # the control plane

        principal = Principal(subject=f"lifecycle:activity-{order.activity_id}", kind="service", admin=True)
        engine = self.runtime.engine
        try:
            claim = check_generation(engine, principal, payload)
            def record(connection: Any, generation: Any) -> None:
                record_generation_in(connection, principal, claim, generation.resources, digest=generation.digest)
                self.runtime.hooks.hook.drg_generation_recording(  # the metadata graph's datasets, among others
                    connection=connection, generation=generation, principal=principal)

            outcome = self.runtime.generate(payload, record, created_by=principal.subject)
        except InvalidPayload as exc:
            return TaskResult(FAILED, errors=f"Invalid generation payload: {exc}")
        except SchemaConflict as exc:
            return TaskResult(FAILED, errors=f"The database does not match the payload: {exc}")
        except DBAPIError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig else "unknown"
            return TaskResult(FAILED, errors=f"The database refused the generation: {reason}")
        except Exception as exc:  # a Problem (409 raced, 403 ...): its detail says why
            detail = getattr(exc, "detail", None) or str(exc)
            return TaskResult(FAILED, errors=f"The generation was refused: {detail}")
        invalidate(engine)
        return TaskResult(PROCESSED, {"target": "local", "changed": outcome.changed,
                                      "generation": outcome.generation.digest,
                                      "createdTables": ",".join(outcome.created_tables)})

    def _remote(self, payload: dict[str, Any], secrets: Mapping[str, str]) -> TaskResult:
        assert self.url is not None
        headers = {**secrets, **({"authorization": f"Bearer {self.token}"} if self.token else {})}
        try:
            response = httpx.post(self.url, json=payload, headers=headers, timeout=REMOTE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return TaskResult(FAILED, errors=f"{self.url} could not be reached: {type(exc).__name__}")
        body = _json(response)
        if response.status_code not in (200, 201):
            detail = body.get("detail") if isinstance(body, dict) else None
            return TaskResult(FAILED, {"target": self.url, "httpStatus": str(response.status_code)},
                              f"{self.url} answered {response.status_code}: {detail or response.reason_phrase}")
        results = {"target": self.url, "httpStatus": str(response.status_code), "changed": response.status_code == 201}
        if isinstance(body, dict):
            results |= {"generation": body.get("digest"), "createdTables": ",".join(body.get("created_tables") or [])}
        return TaskResult(PROCESSED, results)


class WebhookExecutor:
    """POSTs the task to `url`; the executor behind it calls back with a TaskResult."""

    def __init__(self, name: str, url: str, token: str | None = None) -> None:
        self.name, self.url, self.token = name, url, token

    def run(self, order: TaskOrder, secrets: Mapping[str, str]) -> None:
        headers = {**secrets, **({"authorization": f"Bearer {self.token}"} if self.token else {})}
        body = {**order.task, "callbackRef": f"/api/v1/pp/devops/tasks/{order.id}/status?action=STOP"}
        try:
            response = httpx.post(self.url, json=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"webhook {self.url} could not be reached: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"webhook {self.url} refused the task: {response.status_code} {response.reason_phrase}")
        return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class Registry:
    """The executors by name; `generator` is always there."""

    def __init__(self, runtime: Any) -> None:
        self.executors: dict[str, Any] = {"generator": GeneratorExecutor("generator", runtime)}

    def add(self, name: str, executor: Any) -> None:
        self.executors[name] = executor

    def get(self, name: str) -> Any | None:
        return self.executors.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self.executors)


def load_registry(runtime: Any, settings: Any, config_path: str | None) -> Registry:
    """The executors of `EXECUTORS_CONFIG` and of plugins; a bad file stops the start, saying what is wrong."""
    registry = Registry(runtime)
    for name, entry in _read_config(config_path).items():
        registry.add(name, _build(name, entry, runtime, config_path))
    hook = getattr(runtime.hooks.hook, "drg_lifecycle_executors", None)  # the proposed hookspec
    for contributed in (hook(settings=settings, runtime=runtime) if hook is not None else []):
        for name, executor in (contributed or {}).items():
            if name in registry.executors and name != "generator":
                raise StartupError(f"Executor {name!r} is both configured in EXECUTORS_CONFIG and registered by "
                                   "a plugin; rename one")
            registry.add(name, executor)
    return registry


def _read_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        config = json.loads(Path(path).read_text())
    except OSError as exc:
        raise StartupError(f"EXECUTORS_CONFIG names {path}, which cannot be read ({exc.strerror}); fix the path "
                           "or unset EXECUTORS_CONFIG") from None
    except ValueError as exc:
        raise StartupError(f"EXECUTORS_CONFIG file {path} is not JSON ({exc}); fix it") from None
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise StartupError(f"EXECUTORS_CONFIG file {path} must be an object of executors: "
                           '{"<name>": {"type": "generator" | "webhook", "url": ..., "token": ...}}')
    return config


def _build(name: str, entry: dict[str, Any], runtime: Any, path: str | None) -> Any:
    kind, url, token = entry.get("type"), entry.get("url"), entry.get("token")
    where = f"EXECUTORS_CONFIG ({path}): executor {name!r}"
    if kind not in TYPES:
        raise StartupError(f"{where} has type {kind!r}; use one of {', '.join(TYPES)}")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise StartupError(f"{where}: url must be an http(s) URL")
    if token is not None and not isinstance(token, str):
        raise StartupError(f"{where}: token must be a string")
    if kind == "webhook":
        if not url:
            raise StartupError(f"{where}: a webhook executor needs a url")
        return WebhookExecutor(name, url, token)
    return GeneratorExecutor(name, runtime, url, token)
