"""Writers racing on one aspect, on PostgreSQL (where writers really run side by side; SQLite serialises
them): 20 conditional writes with the same If-Version-Match give exactly one success, 20 keyed patches of
different elements of one array all survive, and 20 first writes of a new aspect each get their own version.
Twenty threads drive the in-process service, whose handlers run in worker threads with pooled connections."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests import test_metadata_support as support
from tests.test_metadata_support import batch_get, dataset, latest, upsert
from tests.test_products_support import Actor

graph = support.graph
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
CLIENTS = 20
HIVE = dataset("events", "hive")


def at_once(work: Callable[[int], Any]) -> list[Any]:
    """Run `work(0..19)` in 20 threads released together."""
    barrier = threading.Barrier(CLIENTS)

    def run(index: int) -> Any:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(run, range(CLIENTS)))


def test_twenty_conditional_writes_of_one_version_give_one_success(graph: Actor) -> None:
    upsert(graph, HIVE, {"__type": "DatasetProperties", "description": "v1"})

    def write(index: int) -> int:
        return graph.post("/openapi/entities/v1/", headers={"If-Version-Match": "1"}, json=[{
            "entityType": "dataset", "entityUrn": HIVE,
            "aspect": {"__type": "DatasetProperties", "description": f"writer {index}"}}]).status_code

    statuses = at_once(write)
    assert sorted(statuses) == [200] + [412] * (CLIENTS - 1)
    winner = statuses.index(200)
    aspect = latest(graph, HIVE)[HIVE]["aspects"]["datasetProperties"]
    assert (aspect["version"], aspect["value"]["description"]) == (2, f"writer {winner}")


def test_twenty_keyed_patches_of_one_array_all_survive(graph: Actor) -> None:
    upsert(graph, HIVE, {"__type": "GlobalTags", "tags": [{"tag": "urn:li:tag:seed"}]})

    def add(index: int) -> int:
        tag = f"urn:li:tag:t{index:02d}"
        return graph.patch(f"/openapi/v3/entity/dataset/{HIVE}/globalTags", json={
            "arrayPrimaryKeys": {"tags": ["tag"]},
            "patch": [{"op": "add", "path": f"/tags/{tag}", "value": {"tag": tag}}]}).status_code

    assert at_once(add) == [200] * CLIENTS
    [entity] = batch_get(graph, "dataset", [{"urn": HIVE, "globalTags": {}}], systemMetadata="true")
    tags = sorted(t["tag"] for t in entity["globalTags"]["value"]["tags"])
    assert tags == sorted(["urn:li:tag:seed", *(f"urn:li:tag:t{i:02d}" for i in range(CLIENTS))])
    assert entity["globalTags"]["systemMetadata"]["version"] == str(CLIENTS + 1)


def test_twenty_first_writes_of_a_new_aspect_each_get_a_version(graph: Actor) -> None:
    def write(index: int) -> int:
        return graph.post("/openapi/entities/v1/", json=[{
            "entityType": "dataset", "entityUrn": HIVE,
            "aspect": {"__type": "DatasetProperties", "description": f"writer {index}"}}]).status_code

    assert at_once(write) == [200] * CLIENTS
    history = [batch_get(graph, "dataset", [{"urn": HIVE, "datasetProperties": {"headers": {
        "If-Version-Match": str(v)}}}])[0]["datasetProperties"]["value"]["description"] for v in range(1, CLIENTS + 1)]
    assert sorted(history) == sorted(f"writer {i}" for i in range(CLIENTS))  # every write kept as a version
