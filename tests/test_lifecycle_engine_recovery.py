"""The lifecycle engine at start-up and its executors' configuration, on both databases, in process: an
activity PROCESSING when the service stopped resumes, or its running task is FAILED with a reason; no task
runs twice. (tests/test_lifecycle_engine_live.py restarts a real process in the middle of an activity.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from generator.errors import StartupError
from generator.lifecycle.executors import TaskOrder, TaskResult, load_registry
from generator.lifecycle.tables import activities, tasks
from tests import test_lifecycle_engine_support as support
from tests.test_lifecycle_engine_support import (
    DEVOPS,
    Webhook,
    activity,
    descriptor,
    engine_of,
    register,
    task,
    wait_status,
    write_executors,
)

devops, webhook = support.devops, support.webhook  # the fixtures
Devops = Callable[..., TestClient]
TWO_HOOKS = descriptor(prod=[task("hook", step="one"), task("hook", step="two")])


def change(client: TestClient, table: Any, ident: int, **values: Any) -> None:
    with client.app.runtime.engine.begin() as connection:
        connection.execute(update(table).where(table.c.id == ident).values(**values))


def wait_delivered(client: TestClient, task_id: int) -> None:
    support.wait_until(lambda: engine_of(client).delivered(task_id))


def test_a_delivered_task_waits_for_its_callback_across_a_restart(devops: Devops, webhook: Webhook) -> None:
    before = devops()
    register(before, TWO_HOOKS)
    created = activity(before, "prod")
    first = webhook.wait_for(1)[0]
    wait_delivered(before, first["id"])
    after = devops()  # a restart on the same database
    assert after.get(f"{DEVOPS}/tasks/{first['id']}/status").json() == {"status": "PROCESSING"}
    after.patch(f"{DEVOPS}/tasks/{first['id']}/status?action=STOP", json={"status": "PROCESSED"})
    second = webhook.wait_for(2)[1]
    after.patch(f"{DEVOPS}/tasks/{second['id']}/status?action=STOP", json={"status": "PROCESSED"})
    assert wait_status(after, "activities", created["id"]) == "PROCESSED"
    assert [t["id"] for t in webhook.received] == [first["id"], second["id"]]  # each ran once


def test_a_task_claimed_but_unfinished_is_failed_with_a_reason(devops: Devops, webhook: Webhook) -> None:
    before = devops()
    register(before, TWO_HOOKS)
    created = activity(before, "prod")
    first = webhook.wait_for(1)[0]
    wait_delivered(before, first["id"])
    change(before, tasks, first["id"], delivered_at=None)  # as if the service stopped while handing it over
    after = devops()
    assert wait_status(after, "activities", created["id"]) == "FAILED"
    failed = after.get(f"{DEVOPS}/tasks/{first['id']}").json()
    assert failed["status"] == "FAILED" and "it is not run again" in failed["errors"]
    assert "service stopped" in after.get(f"{DEVOPS}/activities/{created['id']}").json()["errors"]
    assert [t["status"] for t in after.get(f"{DEVOPS}/tasks?activityId={created['id']}").json()] == [
        "FAILED", "ABORTED"]
    assert len(webhook.received) == 1


def test_a_running_task_never_handed_over_is_handed_over_once(devops: Devops, webhook: Webhook) -> None:
    before = devops()
    register(before, TWO_HOOKS)
    created = activity(before, "prod", start=False)
    first = created["tasks"][0]["id"]
    change(before, activities, created["id"], status="PROCESSING")  # stopped between commit and hand-over
    change(before, tasks, first, status="PROCESSING")
    devops()
    after = devops()  # two processes starting on the same database: one claims it
    assert [t["id"] for t in webhook.wait_for(1)] == [first]
    wait_delivered(after, first)
    assert len(webhook.received) == 1


def test_an_activity_between_tasks_starts_its_next_task(devops: Devops, webhook: Webhook) -> None:
    before = devops()
    register(before, TWO_HOOKS)
    created = activity(before, "prod", start=False)
    first, second = (t["id"] for t in created["tasks"])
    change(before, activities, created["id"], status="PROCESSING")
    change(before, tasks, first, status="PROCESSED")
    devops()
    assert [t["id"] for t in webhook.wait_for(1)] == [second]


# -- executors ------------------------------------------------------------------------------------------
class Counter:
    """An executor a plugin would register: runs here and answers at once."""

    def __init__(self) -> None:
        self.orders: list[TaskOrder] = []

    def run(self, order: TaskOrder, secrets: Mapping[str, str]) -> TaskResult:
        self.orders.append(order)
        return TaskResult("PROCESSED", {"count": str(len(self.orders))})


def test_a_plugin_executor_runs_tasks(devops: Devops) -> None:
    client = devops()
    counter = Counter()
    engine_of(client).registry.add("counter", counter)
    register(client, descriptor(dev=[task("counter"), task("counter", previous="${count}")]))
    created = activity(client, "dev")
    assert wait_status(client, "activities", created["id"]) == "PROCESSED"
    assert [o.configurations for o in counter.orders] == [{}, {"previous": "1"}]


def fake_runtime(hook: Any = None) -> Any:
    relay = SimpleNamespace(**({"drg_lifecycle_executors": hook} if hook else {}))
    return SimpleNamespace(hooks=SimpleNamespace(hook=relay), engine=None)


@pytest.mark.parametrize("config, says", [
    ({"x": {"type": "lambda"}}, "has type 'lambda'; use one of generator, webhook"),
    ({"x": {"type": "webhook"}}, "a webhook executor needs a url"),
    ({"x": {"type": "generator", "url": "ftp://prod"}}, "url must be an http(s) URL"),
    ({"x": {"type": "webhook", "url": "http://h", "token": 5}}, "token must be a string"),
    (["generator"], "must be an object of executors"),
])
def test_bad_executor_configs_stop_the_start(tmp_path: Path, config: Any, says: str) -> None:
    with pytest.raises(StartupError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_registry(fake_runtime(), None, write_executors(tmp_path / "e.json", config))


def test_executor_config_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="cannot be read"):
        load_registry(fake_runtime(), None, str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StartupError, match="is not JSON"):
        load_registry(fake_runtime(), None, str(tmp_path / "bad.json"))


def test_executors_from_config_and_plugins(tmp_path: Path) -> None:
    config = write_executors(tmp_path / "e.json", {"prod": {"type": "generator", "url": "https://prod/generator"},
                                                   "ci": {"type": "webhook", "url": "https://ci/hook"}})
    counter = Counter()
    registry = load_registry(fake_runtime(lambda **_: [{"counter": counter}]), None, config)
    assert registry.names() == {"generator", "prod", "ci", "counter"}
    with pytest.raises(StartupError, match="both configured"):
        load_registry(fake_runtime(lambda **_: [{"ci": counter}]), None, config)
