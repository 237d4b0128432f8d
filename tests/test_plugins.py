"""Third-party plugins change decisions: registered directly (`create_app(plugins=...)`) and through the `drg`
entry-point group (a distribution written to a temporary folder on sys.path at test time); a row-filter plugin
limits rows on every surface, ANDed with the data-product policy's own filter; a misspelt hook fails start-up."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest
from starlette.testclient import TestClient

from generator.hooks import Decision, hookimpl
from tests.test_tenancy import SECRET, token

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "plugins"
CLOSED = "labels are closed by a plugin for this test"
MOVED = "records cannot be written here; the plugin says they moved"


def field(name: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_}


def payload() -> dict[str, Any]:
    records = {"name": "records", "tableSchema": {"primaryKey": "id", "fields": [
        field("id", "integer"), field("org"), field("tenantId"), field("value", "integer")]}}  # fmt: skip
    labels = {"name": "labels", "tableSchema": {"primaryKey": "id", "fields": [field("id", "integer"),
                                                                                field("name")]}}
    paths = {"/records": {"get": {}, "post": {}}, "/records/{id}": {"get": {}, "patch": {}},
             "/records/query": {"post": {}}, "/labels": {"get": {}, "post": {}},
             "/labels/{id}/records": {"get": {}, "put": {}}}
    return {"data_resource_schema": {"name": "plugins test", "data": {
        "dataDictionary": [records, labels], "relationships": {"manyToMany": [["labels", "records"]]}},
        "api": {"apiSpec": {"paths": paths}}}}


ROWS = [{"id": i, "org": "a" if i % 2 else "b", "tenantId": "t1" if i % 3 else "t2", "value": i}
        for i in range(1, 13)]


def seeded(client: TestClient) -> TestClient:
    """The generation and its rows, written by the developer (an administrator in development mode)."""
    assert client.post("/generator", json=payload()).status_code == 201
    assert client.post("/records", json=ROWS).status_code == 201
    assert client.post("/labels", json=[{"id": 1, "name": "one"}]).status_code == 201
    assert client.put("/labels/1/records", json=[1, 2, 3]).status_code in (200, 204)
    return client


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


class CloseLabels:
    """Denies every read of labels (even to administrators: a third party's answer comes before our policy's)
    and answers writes to records with a 404 decision."""

    @hookimpl
    def drg_authorize(self, principal: Any, resource: str, action: str) -> Decision | None:
        if resource == "labels":
            return Decision.deny(CLOSED)
        if resource == "records" and action == "write":
            return Decision.deny(MOVED, status=404)
        return None


class SmallValues:
    """Callers only reach records whose value is at most 6."""

    @hookimpl
    def drg_row_filter(self, principal: Any, resource: str, table: Any) -> Any:
        return table.c.value <= 6 if resource == "records" else None


def test_a_registered_plugin_turns_a_200_into_a_403_with_its_reason(make_client: Callable[..., TestClient]
                                                                     ) -> None:
    plain = seeded(make_client())
    assert plain.get("/labels").status_code == 200
    assert plain.post("/records", json={"id": 100, "value": 1}).status_code == 201

    closed = make_client(plugins=(CloseLabels(),))  # a restart on the same database, with the plugin
    for path in ["/labels", "/labels/1/records"]:
        response = closed.get(path)
        assert response.status_code == 403, response.text
        assert response.json()["detail"] == CLOSED
    refused = closed.post("/records", json={"id": 101, "value": 1})
    assert refused.status_code == 404 and refused.json()["detail"] == MOVED
    assert closed.patch("/records/1", json={"value": 0}).status_code == 404
    assert closed.get("/records/1").json()["value"] == 1 and closed.get("/records/101").status_code == 404
    assert len(closed.get("/records").json()["records"]) == len(ROWS) + 1  # what it does not decide is unchanged
    assert closed.get("/rest/labels").status_code == 403  # the PostgREST surface asks the same hook
    assert closed.post("/rest/records", json={"id": 102, "value": 1}).status_code == 404


def test_a_row_filter_plugin_limits_rows_everywhere(make_client: Callable[..., TestClient]) -> None:
    seeded(make_client())
    client = make_client(plugins=(SmallValues(),))
    small = [row["id"] for row in ROWS if row["value"] <= 6]
    assert ids(client.get("/records?order=id").json()["records"]) == small
    assert client.get("/records?limit=1", headers={"Prefer": "count=exact"}).json()["count"] == len(small)
    assert ids(client.post("/records/query", json={"value": {"gte": 4}}).json()["records"]) == [4, 5, 6]
    assert client.get("/records/6").status_code == 200 and client.get("/records/7").status_code == 404
    assert client.patch("/records/7", json={"value": 0}).status_code == 404  # writes reach only those rows
    assert ids(client.get("/rest/records?select=id&order=id").json()) == small
    assert ids(client.get("/labels?select=*,records(*)").json()["labels"][0]["records"]) == [1, 2, 3]
    with_big = client.put("/labels/1/records", json=[5, 6])
    assert with_big.status_code in (200, 204), with_big.text
    assert ids(client.get("/labels/1/records").json()["records"]) == [5, 6]
    csv = client.get("/records?select=id&order=id", headers={"Accept": "text/csv"}).text.split()
    assert csv == ["id", *map(str, small)]


def test_a_plugins_row_filter_is_anded_with_the_policys(make_client: Callable[..., TestClient]) -> None:
    seeded(make_client())
    client = make_client(plugins=(SmallValues(),), jwt_secret=SECRET)
    assert client.put("/data-products/p", json={"owner": "OWNER", "multiTenant": True}).status_code == 201
    serving = {"servingName": "rows", "servingType": "api", "url": "/records", "accessRestriction": "TENANT"}
    assert client.post("/data-products/p/servings", json=serving).status_code == 201
    assert client.put("/data-products/p/access", json={"grantee": "READERS", "servings": ["rows"]}).status_code == 200
    reader = token("reader", ["G_TEAM_READERS"], orgs=["a"], tenantIds=["t1"])
    expected = [r["id"] for r in ROWS if r["value"] <= 6 and r["org"] == "a" and r["tenantId"] == "t1"]
    assert expected == [1, 5]
    assert ids(client.get("/records?order=id", headers=reader).json()["records"]) == expected
    assert ids(client.get("/rest/records?select=id&order=id", headers=reader).json()) == expected
    assert client.get("/records/7", headers=reader).status_code == 404  # the policy's rows, not the plugin's
    assert client.get("/records/2", headers=reader).status_code == 404  # the plugin's, not the policy's


def install_distribution(root: Path, name: str, entry_points: str) -> Path:
    """A minimal installed distribution: `<name>-1.0.dist-info` with METADATA and entry_points.txt."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    return root


def test_an_entry_point_plugin_changes_a_decision(make_client: Callable[..., TestClient], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plain = seeded(make_client())
    assert plain.get("/labels").status_code == 200  # not installed yet
    site = install_distribution(tmp_path / "site", "drg-fixture-plugin", "[drg]\nclose_labels = drg_fixture_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.delitem(sys.modules, "drg_fixture_plugin", raising=False)

    manager = pluggy.PluginManager("drg")
    assert manager.load_setuptools_entrypoints("drg") == 1  # pluggy finds it, as create_app's manager will
    client = make_client()
    assert client.app.runtime.hooks.get_plugin("close_labels") is not None
    response = client.get("/labels")
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "drg_fixture_plugin closes labels to everyone"
    assert client.get("/records").status_code == 200


class Misspelt:
    @hookimpl
    def drg_authorise(self, principal: Any, resource: str, action: str) -> Decision:
        return Decision.deny("never asked")


class WrongArgument:
    @hookimpl
    def drg_authorize(self, user: Any, resource: str, action: str) -> Decision:
        return Decision.deny("never asked")


@pytest.mark.parametrize("plugin", [Misspelt(), WrongArgument()], ids=["misspelt-hook", "wrong-argument"])
def test_a_broken_plugin_fails_start_up(make_client: Callable[..., TestClient], plugin: object) -> None:
    with pytest.raises(pluggy.PluginValidationError, match="drg_authori"):
        make_client(plugins=(plugin,))


def test_a_misspelt_entry_point_plugin_fails_start_up(make_client: Callable[..., TestClient], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    site = install_distribution(tmp_path / "site", "drg-fixture-misspelt", "[drg]\nmisspelt = drg_fixture_misspelt\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(FIXTURES))
    with pytest.raises(pluggy.PluginValidationError, match="drg_authorise"):
        make_client()
