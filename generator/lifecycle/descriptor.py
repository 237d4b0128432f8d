"""A data product version's descriptor and its `lifecycle` block (pure: no database, no HTTP).

    {"info": {...}, ...anything else, kept as sent...,
     "lifecycle": {"stages": [
         {"name": "dev", "tasks": [{"executorRef": "generator", "template": "...", "configurations": {...}}]},
         {"name": "prod", "tasks": [...]}]}}

Stages are ordered and uniquely named; each task names its executor (`executorRef`, required), and may carry
a `template` (any JSON) and `configurations` (an object, whose strings may reference `${variable}`s set by
earlier tasks' results). An `executorRef` that names no configured executor is refused (400, naming it)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from generator.lifecycle.problems import OdmProblem

NAME_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
TASK_KEYS = frozenset({"executorRef", "template", "configurations"})


@dataclass(frozen=True)
class TaskPlan:
    executor: str
    template: Any
    configurations: dict[str, Any]


def invalid(message: str) -> OdmProblem:
    return OdmProblem(400, 40003, "Data product descriptor is not valid", message)


def check_name(value: str, what: str) -> str:
    if not NAME_FORM.fullmatch(value):
        raise OdmProblem(400, 40002, "Request parameter is not valid",
                         f"{what} {value!r} must match {NAME_FORM.pattern}")
    return value


def parse_lifecycle(descriptor: Any, executors: Collection[str]) -> dict[str, tuple[TaskPlan, ...]]:
    """The stages, in order, with their task plans; 400 (40003) with the first thing wrong."""
    if not isinstance(descriptor, Mapping):
        raise invalid("The descriptor must be a JSON object")
    block = descriptor.get("lifecycle")
    if not isinstance(block, Mapping) or not isinstance(block.get("stages"), list):
        raise invalid("The descriptor needs a lifecycle block: {\"lifecycle\": {\"stages\": [{\"name\": ..., "
                      "\"tasks\": [...]}]}}")
    stages: dict[str, tuple[TaskPlan, ...]] = {}
    for i, stage in enumerate(block["stages"]):
        where = f"lifecycle.stages[{i}]"
        if not isinstance(stage, Mapping) or not isinstance(stage.get("name"), str):
            raise invalid(f"{where} must be an object with a name")
        name = stage["name"]
        if not NAME_FORM.fullmatch(name):
            raise invalid(f"{where}.name {name!r} must match {NAME_FORM.pattern}")
        if name in stages:
            raise invalid(f"{where}.name {name!r} names a stage already listed")
        plans = stage.get("tasks", [])
        if not isinstance(plans, list):
            raise invalid(f"{where}.tasks must be a list")
        stages[name] = tuple(_task(plan, f"{where}.tasks[{j}]", executors) for j, plan in enumerate(plans))
    return stages


def _task(plan: Any, where: str, executors: Collection[str]) -> TaskPlan:
    if not isinstance(plan, Mapping):
        raise invalid(f"{where} must be an object")
    unknown = sorted(set(plan) - TASK_KEYS)
    if unknown:
        raise invalid(f"{where} has unknown member(s) {', '.join(unknown)}; a task has {', '.join(sorted(TASK_KEYS))}")
    executor = plan.get("executorRef")
    if not isinstance(executor, str) or not executor:
        raise invalid(f"{where}.executorRef is required: the name of a configured executor")
    if executor not in executors:
        raise invalid(f"{where}.executorRef names executor {executor!r}, which is not configured "
                      f"(configured: {', '.join(sorted(executors))})")
    configurations = plan.get("configurations", {})
    if not isinstance(configurations, Mapping):
        raise invalid(f"{where}.configurations must be an object")
    return TaskPlan(executor, plan.get("template"), dict(configurations))


VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


def resolve(value: Any, variables: Mapping[str, str]) -> Any:
    """`value` with `${name}` in its strings replaced by the variables' values; unknown names stay as they are."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [resolve(item, variables) for item in value]
    if isinstance(value, Mapping):
        return {key: resolve(item, variables) for key, item in value.items()}
    return value
