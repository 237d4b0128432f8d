"""The datasets' main flow on PostgreSQL (tests/test_datasets.py runs everything on SQLite): tables created at
mount, index rows, paging, promotion decided by the row, audit lines kept in the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from starlette.testclient import TestClient

from tests.test_datasets import BODY, DS, make_ds, problem_of  # noqa: F401 (make_ds is a fixture)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def test_dataset_lifecycle_on_postgresql(make_ds: Callable[..., DS],  # noqa: F811
                                         make_client: Callable[..., TestClient]) -> None:
    ds = make_ds()
    made = [ds.create({**BODY, "name": f"pg-{i}"}) for i in range(3)]
    first = ds.client.get(ds.base, params={"limit": 2}).json()
    assert [d["id"] for d in first["datasets"]] == [m["id"] for m in made[:2]] and first["total"] == 3
    url = f"{ds.base}/{made[0]['id']}"
    changed = ds.client.put(url, json={"metadata": {"description": "on pg"}}, headers={"X-Forwarded-User": "awong"})
    assert changed.json()["metadata"]["description"] == "on pg"
    assert ds.client.patch(url, headers={"X-Forwarded-User": "awong"}).status_code == 200
    problem_of(ds.client.patch(url), 409)
    boto3.client("logs").delete_log_group(logGroupName="/spinup/localdev/grp")  # lines survive without CloudWatch
    lines: list[Any] = ds.client.get(f"{url}/logs").json()
    assert [line.split(" - ", 1)[1].split(" ", 1)[0] for line in lines] == ["Created", "Updated", "Finalized"]
    assert ds.client.delete(url).status_code == 204
    assert ds.client.get(ds.base).json()["total"] == 2
    restarted = make_client()  # the tables exist: mounting again keeps them and their rows
    assert restarted.get(ds.base).json()["total"] == 2
