"""Read replicas (DATABASE_REPLICA_URLS): the generated routes' reads go to a PostgreSQL streaming replica the
session starts (`pg_basebackup -R`), writes and everything else to the primary; a replica that lags beyond
the bound or is down is skipped. PostgreSQL only.

How the tests tell which server answered: replay is paused on the replica, a row is written on the primary,
and a read that does not see it came from the replica (one that does, from the primary)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from generator.config import Settings
from generator.errors import StartupError
from generator.models.engine import create_database_engine
from generator.models.replicas import ReplicaSet, replicas_of
from tests.support.moto_server import MotoServer
from tests.support.postgres import PostgresServer, ReplicaServer
from tests.test_cloud_credentials import create_role, put_secret

WAIT_S = 15.0  # every wait is bounded


@pytest.fixture(scope="session")
def replica_server(postgres_server: PostgresServer) -> Iterator[ReplicaServer]:
    """One streaming replica of the session's server, shared by these tests (starting one takes seconds)."""
    try:
        replica = postgres_server.start_replica()
    except RuntimeError as exc:
        if "TEST_POSTGRES_URL" in str(exc):  # a server someone else runs cannot be given a replica by us;
            pytest.skip(str(exc))  # `./dev test` and CI start their own, where this never skips
        raise
    yield replica
    replica.destroy()


@pytest.fixture
def replica(replica_server: ReplicaServer) -> Iterator[ReplicaServer]:
    """The replica, replaying; left replaying for the next test whatever this one did to it."""
    yield replica_server
    replica_server.resume_replay()


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def service(make_client: Callable[..., TestClient], postgres_url: str,
            replica: ReplicaServer) -> Callable[..., TestClient]:
    """A service on the test's database whose reads may go to the replica's copy of it."""
    database = make_url(postgres_url).database or ""

    def make(max_lag: float = 60.0, check: float = 0.1) -> TestClient:
        return make_client(database_replica_urls=(replica.url_for(database),),
                           database_replica_max_lag_seconds=max_lag, database_replica_check_seconds=check)

    return make


def payload(*names: str) -> dict[str, Any]:
    tables, paths = [], {}
    for name in names:
        tables.append({"name": name, "tableSchema": {"primaryKey": "id", "fields": [
            {"name": "id", "type": "integer"}, {"name": "label", "type": "string"}]}})  # fmt: skip
        paths |= {f"/{name}": {"get": {}, "post": {}}, f"/{name}/{{id}}": {"get": {}, "patch": {}, "delete": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": tables}, "api": {"apiSpec": {"paths": paths}}}}


def until(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.05)


def answered(response: Any, status: int) -> Any:
    assert response.status_code == status, response.text
    return response


def replicas(client: TestClient) -> ReplicaSet:
    found = replicas_of(client.app.runtime.engine)
    assert found is not None
    return found


def in_use(client: TestClient, replica: ReplicaServer) -> ReplicaSet:
    """Wait until the replica has replayed everything so far and the service uses it."""
    replica.wait_caught_up(WAIT_S)
    chooser = replicas(client)

    def healthy() -> bool:
        chooser.check()
        return bool(chooser.healthy)

    until(healthy, "the service uses the replica")
    return chooser


def labels(client: TestClient, table: str = "item") -> list[str]:
    response = client.get(f"/{table}")
    assert response.status_code == 200, response.text
    return [row["label"] for row in response.json()[table]]


def started(service: Callable[..., TestClient], **options: float) -> TestClient:
    """A service with the table `item` generated and one row (`one`, key 1)."""
    client = service(**options)
    assert client.post("/generator", json=payload("item")).status_code == 201
    assert client.post("/item", json={"label": "one"}).status_code == 201
    return client


def test_reads_go_to_the_replica_and_writes_to_the_primary(service: Callable[..., TestClient],
                                                           replica: ReplicaServer) -> None:
    client = started(service)
    in_use(client, replica)
    assert client.get("/item/1").json() == {"id": 1, "label": "one"}
    replica.pause_replay()
    assert client.post("/item", json={"label": "two"}).status_code == 201  # written on the primary
    assert client.get("/item/2").status_code == 404  # read on the replica, which has not replayed it
    assert labels(client) == ["one"]
    changed = client.patch("/item/1", json={"label": "uno"})
    assert changed.status_code == 200 and changed.json() == {"id": 1, "label": "uno"}  # the write's own read
    assert client.get("/item/1").json() == {"id": 1, "label": "one"}
    assert client.delete("/item/1").status_code == 204
    assert client.get("/item/1").status_code == 200
    # PostgREST's return=representation reads in the write's transaction, on the primary
    created = client.post("/rest/item", json={"label": "three"}, headers={"Prefer": "return=representation"})
    assert created.status_code == 201 and created.json() == [{"id": 3, "label": "three"}]
    assert client.get("/rest/item?id=eq.3").json() == []
    replica.resume_replay()
    replica.wait_caught_up(WAIT_S)
    assert labels(client) == ["two", "three"]
    assert client.get("/item/1").status_code == 404


def test_a_replica_behind_by_more_than_the_bound_is_skipped_until_it_catches_up(
        service: Callable[..., TestClient], replica: ReplicaServer) -> None:
    client = started(service, max_lag=2.0, check=0.1)
    chooser = in_use(client, replica)
    time.sleep(2.5)  # an idle primary: no write for longer than the bound is not lag
    assert chooser.healthy, chooser.replicas[0].reason
    replica.pause_replay()
    assert client.post("/item", json={"label": "late"}).status_code == 201
    assert client.get("/item/2").status_code == 404  # within the bound: still the replica
    # past the bound, reads go to the primary (replay is still paused) and the replica says why
    until(lambda: client.get("/item/2").status_code == 200, "a read of the primary")
    assert labels(client) == ["one", "late"]
    assert not chooser.healthy and "behind the primary" in chooser.replicas[0].reason
    replica.resume_replay()
    in_use(client, replica)
    replica.pause_replay()  # back in use: a row written now is not seen
    assert client.post("/item", json={"label": "later"}).status_code == 201
    assert client.get("/item/3").status_code == 404


def test_a_stopped_replica_is_skipped_without_errors(service: Callable[..., TestClient],
                                                     replica: ReplicaServer) -> None:
    client = started(service, check=0.1)
    chooser = in_use(client, replica)
    assert client.get("/item/1").status_code == 200  # the pool now holds a connection to the replica
    replica.stop()
    try:
        for _ in range(20):  # the first finds its connection closed: retried on the primary
            assert client.get("/item/1").json() == {"id": 1, "label": "one"}
        assert client.post("/item", json={"label": "two"}).status_code == 201
        assert labels(client) == ["one", "two"]
        assert client.get("/rest/item?id=eq.2").json() == [{"id": 2, "label": "two"}]
        assert not chooser.healthy
    finally:
        replica.start()
    in_use(client, replica)  # a later check finds it well again


def test_generations_and_admin_routes_use_the_primary(service: Callable[..., TestClient],
                                                      replica: ReplicaServer) -> None:
    client = started(service)
    chooser = in_use(client, replica)
    replica.pause_replay()
    second = client.post("/generator", json=payload("item", "other"))
    assert second.status_code == 201, second.text
    # the replica has not replayed the new table: its reads are run again on the primary
    assert answered(client.get("/other"), 200).json()["other"] == []
    answered(client.post("/other", json={"label": "new"}), 201)
    assert answered(client.get("/other/1"), 200).json() == {"id": 1, "label": "new"}
    # a table missing on the replica does not take it out of use: `item` reads are still the replica's
    answered(client.post("/item", json={"label": "two"}), 201)
    assert client.get("/item/2").status_code == 404, chooser.replicas[0].reason
    current = answered(client.get("/generator"), 200)
    assert current.json()["digest"] == client.app.runtime.current.generation.digest
    answered(client.get("/health"), 200)
    answered(client.get("/ready"), 200)
    assert "/other" in client.get("/openapi.json").json()["paths"]


def test_a_replica_url_without_credentials_connects_as_the_secret_says(
        aws: MotoServer, postgres_server: PostgresServer, postgres_url: str, replica: ReplicaServer,
        make_client: Callable[..., TestClient]) -> None:
    role = create_role(postgres_server, postgres_url)
    client = make_client(database_url="", aws_sm_enabled=True, aws_sm_name=put_secret(role.secret()),
                         aws_sm_region="us-east-1", database_replica_urls=(f"postgresql://127.0.0.1:{replica.port}",))
    assert client.post("/generator", json=payload("item")).status_code == 201
    in_use(client, replica)
    replica.pause_replay()
    assert client.post("/item", json={"label": "one"}).status_code == 201
    assert client.get("/item/1").status_code == 404  # read on the replica
    with psycopg.connect(make_url(replica.url_for(role.database)).set(drivername="postgresql")
                         .render_as_string(hide_password=False), autocommit=True) as connection:
        users = {row[0] for row in connection.execute(
            "SELECT usename FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (role.database,))}
    assert users == {role.name}  # the secret's user, in the secret's database


@pytest.mark.parametrize(("settings", "message"), [
    # replicas of a SQLite database cannot exist
    ({"database_url": "sqlite:///x.sqlite3", "database_replica_urls": ("postgresql://r/db",)},
     "DATABASE_REPLICA_URLS is set but the database is sqlite"),
    # a replica must be PostgreSQL too (named, without its password)
    ({"database_url": "postgresql://p/db", "database_replica_urls": ("mysql://u:secret@r/db",)},
     r"DATABASE_REPLICA_URLS names mysql://u:\*\*\*@r/db: read replicas are PostgreSQL"),
    # not a URL at all (a typo in the list)
    ({"database_url": "postgresql://p/db", "database_replica_urls": ("replica-host:5432",)}, "not a database URL"),
])
def test_replica_settings_that_cannot_work_stop_the_start(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(StartupError, match=message):
        create_database_engine(Settings(**settings))


def test_replica_settings_from_the_environment() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u:p@primary/app",
                                  "DATABASE_REPLICA_URLS": "postgresql://replica-a/app, postgresql://replica-b/app",
                                  "DATABASE_REPLICA_MAX_LAG_SECONDS": "2.5"})
    assert settings.database_replica_urls == ("postgresql://replica-a/app", "postgresql://replica-b/app")
    assert settings.database_replica_max_lag_seconds == 2.5
    for lag, check in (("0", "1"), ("5", "0"), ("1", "2")):  # lag is measured once per check
        with pytest.raises(ValueError, match="DATABASE_REPLICA_CHECK_SECONDS must be positive and less than"):
            Settings.from_env({"DATABASE_REPLICA_MAX_LAG_SECONDS": lag, "DATABASE_REPLICA_CHECK_SECONDS": check})
    engine = create_database_engine(settings)
    try:
        chooser = replicas_of(engine)
        assert chooser is not None
        urls = [replica.engine.url for replica in chooser.replicas]
    finally:
        engine.dispose()
    # a replica URL without credentials connects as the primary does, and gives up on a dead host soon
    assert [(u.host, u.username, u.password, u.query["connect_timeout"]) for u in urls] == [
        ("replica-a", "u", "p", "3"), ("replica-b", "u", "p", "3")]

