"""Long-lived process properties: regenerating many times must not leak threads or keep old apps alive."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

from starlette.testclient import TestClient


def one_table_payload(name: str) -> dict[str, Any]:
    table = {"name": name, "tableSchema": {"fields": [{"name": "id", "type": "integer"},
                                                      {"name": "label", "type": "string"}], "primaryKey": "id"}}
    paths = {f"/{name}": {"get": {}, "post": {}}, f"/{name}/{{id}}": {"get": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": [table]}, "api": {"apiSpec": {"paths": paths}}}}


def test_regenerations_do_not_leak_threads_or_apps(client: TestClient) -> None:
    assert client.post("/generator", json=one_table_payload("warmup")).status_code == 201
    assert client.post("/warmup", json={"label": "x"}).status_code == 201
    threads_before = threading.active_count()
    retired = []
    for index in range(10):
        retired.append(weakref.ref(client.app.runtime.current))
        assert client.post("/generator", json=one_table_payload(f"t{index}")).status_code == 201
        assert client.post(f"/t{index}", json={"label": str(index)}).status_code == 201
        assert client.get(f"/t{index}/1").json() == {"id": 1, "label": str(index)}
    gc.collect()
    assert threading.active_count() <= threads_before + 2
    assert sum(ref() is not None for ref in retired) <= 1, "retired generations are still referenced"
