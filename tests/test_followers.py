"""Several processes on one database (uvicorn workers, replicas): a generation applied by one is adopted
by the others, which only read the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.test_lifecycle import one_table_payload


def test_a_generation_applied_elsewhere_is_adopted_on_refresh(make_client: Callable[..., TestClient]) -> None:
    leader, follower = make_client(), make_client()
    assert leader.post("/generator", json=one_table_payload("shared")).status_code == 201
    assert leader.post("/shared", json={"label": "from the leader"}).status_code == 201
    assert follower.get("/shared/1").status_code == 404  # not yet: it serves what it booted with
    assert follower.app.runtime.refresh() is True
    assert follower.get("/shared/1").json() == {"id": 1, "label": "from the leader"}
    assert follower.get("/generator").json()["digest"] == leader.get("/generator").json()["digest"]
    assert follower.app.runtime.refresh() is False  # nothing newer: nothing to do


def test_a_follower_that_applied_the_same_payload_is_not_rebuilt(make_client: Callable[..., TestClient]) -> None:
    first, second = make_client(), make_client()
    payload: dict[str, Any] = one_table_payload("same")
    assert first.post("/generator", json=payload).status_code == 201
    assert second.post("/generator", json=payload).status_code == 201  # its own view was empty
    served = second.app.runtime.current
    assert first.app.runtime.refresh() is False
    assert second.app.runtime.refresh() is False
    assert second.app.runtime.current is served


def test_a_restarted_process_serves_the_newest_recorded_generation(make_client: Callable[..., TestClient]) -> None:
    leader = make_client()
    assert leader.post("/generator", json=one_table_payload("v1")).status_code == 201
    assert leader.post("/generator", json=one_table_payload("v2")).status_code == 201
    restarted = make_client()
    assert restarted.get("/v2").status_code == 200
    assert restarted.app.runtime.refresh() is False
