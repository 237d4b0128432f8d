"""The PyPI `postgrest` client (the one supabase-py uses) drives a live server's /rest surface unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgrest import APIError, CountMethod, SyncPostgrestClient

from tests.support.live_server import StartLiveServer

TIMEOUT_S = 10.0  # every request of the client is bounded


def payload() -> dict[str, Any]:
    fields = [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
              {"name": "age", "type": "integer"}, {"name": "email", "type": "string", "constraints": {"unique": True}}]
    person = {"name": "person", "tableSchema": {"primaryKey": "id", "fields": fields}}
    paths = {"/person": {"get": {}, "post": {}}, "/person/{id}": {"get": {}, "patch": {}, "delete": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": [person]}, "api": {"apiSpec": {"paths": paths}}}}


@pytest.fixture
def rest(live_server: StartLiveServer, database_url: str, tmp_path: Path) -> Iterator[SyncPostgrestClient]:
    server = live_server(database_url, tmp_path)
    generated = httpx.post(f"{server.url}/generator", json=payload(), timeout=TIMEOUT_S, trust_env=False)
    assert generated.status_code == 201, generated.text
    session = httpx.Client(base_url=f"{server.url}/rest", timeout=TIMEOUT_S, trust_env=False)
    client = SyncPostgrestClient(base_url=f"{server.url}/rest", http_client=session, retry_enabled=False)
    yield client
    session.close()


def test_the_postgrest_client_works_unchanged(rest: SyncPostgrestClient) -> None:
    people = rest.from_("person")
    rows = [{"name": "Ann", "age": 30, "email": "ann@x.org"}, {"name": "Bob", "age": 40, "email": "bob@x.org"},
            {"name": "Cy", "age": 25, "email": "cy@x.org"}]
    inserted = people.insert(rows).execute()
    assert [row["id"] for row in inserted.data] == [1, 2, 3]

    adults = people.select("name,age").gte("age", 30).order("age", desc=True).execute()
    assert adults.data == [{"name": "Bob", "age": 40}, {"name": "Ann", "age": 30}]
    page = people.select("id", count=CountMethod.exact).order("id").range(1, 2).execute()
    assert page.data == [{"id": 2}, {"id": 3}] and page.count == 3
    single = people.select("name").eq("email", "cy@x.org").single().execute()
    assert single.data == {"name": "Cy"}
    assert people.select("*").eq("id", 99).maybe_single().execute() is None
    with pytest.raises(APIError) as many:
        people.select("*").single().execute()
    assert many.value.code == "PGRST116"

    upserted = people.upsert({"id": 1, "name": "Ann B", "age": 31}).execute()
    assert upserted.data == [{"id": 1, "name": "Ann B", "age": 31, "email": "ann@x.org"}]
    by_email = people.upsert({"name": "Bobby", "email": "bob@x.org"}, on_conflict="email").execute()
    assert by_email.data[0]["id"] == 2 and by_email.data[0]["name"] == "Bobby"

    updated = people.update({"age": 26}).eq("name", "Cy").execute()
    assert updated.data == [{"id": 3, "name": "Cy", "age": 26, "email": "cy@x.org"}]
    deleted = people.delete().in_("id", [2, 3]).execute()
    assert sorted(row["id"] for row in deleted.data) == [2, 3]
    remaining = people.select("id,name", count=CountMethod.exact).execute()
    assert remaining.data == [{"id": 1, "name": "Ann B"}] and remaining.count == 1


def test_errors_reach_the_client_as_postgrest_errors(rest: SyncPostgrestClient) -> None:
    people = rest.from_("person")
    people.insert({"name": "Ann", "email": "ann@x.org"}).execute()
    with pytest.raises(APIError) as duplicate:
        people.insert({"name": "Other", "email": "ann@x.org"}).execute()
    assert duplicate.value.code == "23505"
    with pytest.raises(APIError) as unknown:
        rest.from_("nobody").select("*").execute()
    assert unknown.value.code == "PGRST205"
    with pytest.raises(APIError) as unfiltered:
        people.delete().execute()
    assert unfiltered.value.code == "21000"
    with pytest.raises(APIError) as rpc:
        rest.rpc("anything", {}).execute()
    assert rpc.value.code == "PGRST202"
