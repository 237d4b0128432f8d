"""Route handlers: check what a request carries, then call the engine (state changes) or the store (reads)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from generator.lifecycle import store
from generator.lifecycle.descriptor import check_name
from generator.lifecycle.engine import LifecycleEngine
from generator.lifecycle.executors import TaskResult
from generator.lifecycle.problems import OdmProblem, bad_body, bad_parameter
from generator.lifecycle.routes import Request, Route, as_id, route
from generator.lifecycle.states import FAILED, PROCESSED, STATES


def _string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise bad_body(f"{key} is required: a non-empty string")
    return value


def _object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise bad_body(f"The body must be {what} (a JSON object)")
    return body


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, Any]:
    filters: dict[str, Any] = {k: request.query[k] for k in names if request.query.get(k)}
    if "status" in filters and filters["status"] not in STATES:
        raise bad_parameter(f"status must be one of {', '.join(STATES)}, not {filters['status']!r}")
    if "activityId" in filters:
        filters["activityId"] = as_id(filters["activityId"], "activityId")
    return filters


def _action(request: Request, allowed: tuple[str, ...]) -> str:
    action = request.query.get("action", "")
    if action.upper() not in allowed:
        raise OdmProblem(400, 40055, "Action not supported",
                         f"action={action!r} is not one of {', '.join(allowed)}" if action else
                         f"The action parameter is required: one of {', '.join(allowed)}")
    return action.upper()


def _task_result(body: Any) -> TaskResult:
    body = _object(body, "a TaskResult")
    unknown = sorted(set(body) - {"status", "results", "errors"})
    if unknown:
        raise bad_body(f"A TaskResult has status, results and errors, not {', '.join(unknown)}")
    status, results, errors = body.get("status"), body.get("results"), body.get("errors")
    if status not in (PROCESSED, FAILED):
        raise bad_body(f"status must be {PROCESSED} or {FAILED}, not {status!r}")
    if results is not None and not isinstance(results, Mapping):
        raise bad_body("results must be an object")
    if errors is not None and not isinstance(errors, str):
        raise bad_body("errors must be a string")
    return TaskResult(status, dict(results) if results is not None else None, errors)


def build_routes(engine: Engine, lifecycle: LifecycleEngine) -> list[Route]:
    def reader(request: Request) -> None:
        store.require_caller(request.principal)

    def put_version(request: Request) -> tuple[int, Any]:
        view, created = store.put_version(engine, request.principal, request.params["name"],
                                          request.params["version"], request.body, lifecycle.registry.names())
        return (201 if created else 200), view

    def get_version(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.get_version(engine, request.params["name"], request.params["version"])

    def list_versions(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.list_versions(engine, request.params["name"])

    def create_activity(request: Request) -> tuple[int, Any]:
        body = _object(request.body, "an activity")
        product, version, stage = (_string(body, k) for k in ("dataProductId", "dataProductVersion", "stage"))
        start = request.flag("startAfterCreation", False)
        return 201, lifecycle.create(request.principal, product, version, stage, start, request.secrets())

    def list_activities(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.list_activities(engine, _filters(request, ("dataProductId", "dataProductVersion",
                                                                     "stage", "status")))

    def get_activity(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.get_activity(engine, request.ident())

    def activity_status(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, {"status": store.get_activity(engine, request.ident())["status"]}

    def change_activity(request: Request) -> tuple[int, Any]:
        ident = request.ident()
        if _action(request, ("START", "ABORT")) == "START":
            return 200, lifecycle.start(request.principal, ident, request.secrets())
        return 200, lifecycle.abort(request.principal, ident)

    def list_tasks(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.list_tasks(engine, _filters(request, ("activityId", "executor", "status")))

    def get_task(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.get_task(engine, request.ident())

    def task_status(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, {"status": store.get_task(engine, request.ident())["status"]}

    def stop_task(request: Request) -> tuple[int, Any]:
        ident = request.ident()
        _action(request, ("STOP",))
        update_variables = request.flag("updateVariables", True)
        return 200, lifecycle.callback(request.principal, ident, _task_result(request.body), update_variables)

    def all_lifecycles(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.lifecycles(engine)

    def product_lifecycles(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.lifecycles(engine, request.params["product"])

    def version_lifecycles(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.lifecycles(engine, request.params["product"], request.params["version"])

    def current_lifecycle(request: Request) -> tuple[int, Any]:
        reader(request)
        return 200, store.current_stage(engine, request.params["product"], request.params["version"])

    def named(handler: Any) -> Any:  # names in paths are checked before anything else
        def checked(request: Request) -> tuple[int, Any]:
            for key in ("name", "version", "product"):
                if key in request.params:
                    check_name(request.params[key], key)
            return handler(request)
        return checked

    return [
        route("/data-products/{name}/versions", GET=(named(list_versions), False)),
        route("/data-products/{name}/versions/{version}", PUT=(named(put_version), True),
              GET=(named(get_version), False)),
        route("/activities", GET=(list_activities, False), POST=(create_activity, True)),
        route("/activities/{id}", GET=(get_activity, False)),
        route("/activities/{id}/status", GET=(activity_status, False), PATCH=(change_activity, False)),
        route("/tasks", GET=(list_tasks, False)),
        route("/tasks/{id}", GET=(get_task, False)),
        route("/tasks/{id}/status", GET=(task_status, False), PATCH=(stop_task, True)),
        route("/lifecycles", GET=(all_lifecycles, False)),
        route("/lifecycles/{product}", GET=(named(product_lifecycles), False)),
        route("/lifecycles/{product}/{version}", GET=(named(version_lifecycles), False)),
        route("/lifecycles/{product}/{version}/current", GET=(named(current_lifecycle), False)),
    ]
