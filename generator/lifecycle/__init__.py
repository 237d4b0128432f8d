"""The lifecycle engine (control plane): data product versions moved between stages by activities and tasks,
run by executors, in the ODM Platform DevOps API's shape (see README.md). `generator.mounts` finds `mount`."""

from __future__ import annotations

import os
from typing import Any

from generator.codec import dumps
from generator.lifecycle.engine import LifecycleEngine
from generator.lifecycle.executors import load_registry
from generator.lifecycle.handlers import build_routes
from generator.lifecycle.problems import OdmProblem
from generator.lifecycle.routes import PREFIX, DevOpsApp
from generator.lifecycle.tables import create_tables


def mount(runtime: Any, settings: Any, authenticator: Any) -> Any:
    """Create the tables, load the executors (`EXECUTORS_CONFIG`), resume interrupted activities, and return
    the DevOps API mounted at `/api/v1/pp/devops`."""
    from generator.app import Mount  # the dispatcher's type; imported late, as app.py imports generator.mounts

    registry = load_registry(runtime, settings, os.environ.get("EXECUTORS_CONFIG", "").strip() or None)
    create_tables(runtime.engine)
    engine = LifecycleEngine(runtime.engine, registry)
    engine.recover()
    app = DevOpsApp(build_routes(runtime.engine, engine))
    app.engine = engine  # type: ignore[attr-defined]  # for tests and operators: the running engine
    return Mount(prefix=PREFIX, app=app, alias=("data-products", _versions), refusal=_refusal)


def _refusal(problem: dict[str, Any], path: str) -> tuple[bytes, bytes]:
    """The dispatcher's 401 (or 503: keys unreachable) in the seed's error format, code status·100 + 1."""
    status = int(problem["status"])
    body = OdmProblem(status, status * 100 + 1, problem.get("title", "Unauthorized"), problem["detail"]).body(path)
    return dumps(body), b"application/json"


def _versions(path: str) -> str | None:
    """`/data-products/{name}/versions[/...]`, the products' own path of their versions, served here."""
    parts = path.split("/")
    return PREFIX + path if len(parts) >= 4 and parts[1] == "data-products" and parts[3] == "versions" else None
