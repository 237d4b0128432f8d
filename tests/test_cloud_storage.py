"""SCHEMA_STORAGE_TYPE=S3: the payload kept as a private, encrypted S3 object that never goes backwards,
read by replicas that share no disk. Against moto's real HTTP server (the `aws` fixture)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from starlette.testclient import TestClient

from generator.app import create_app
from generator.config import Settings
from generator.errors import StartupError
from generator.storage import create_store
from generator.storage.s3 import S3PayloadStore
from tests.support.moto_server import MotoServer
from tests.test_lifecycle import one_table_payload

KEY = "drg/payload.json"


@pytest.fixture
def bucket(aws: MotoServer) -> str:
    """A fresh bucket of this test's own (the moto server is shared by the session)."""
    name = f"drg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def start(database_url: str, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Factory: a service on `database_url` with S3 storage and a data folder of its own (a replica)."""
    clients: list[TestClient] = []

    def make(bucket: str, folder: str, **overrides: Any) -> TestClient:
        settings = Settings(database_url=database_url, data_dir=tmp_path / folder / "data",
                            payload_path=tmp_path / folder / "payload.json", storage_type="S3",
                            s3_bucket=bucket, s3_object_name=KEY, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.app.runtime.engine.dispose()


def saved_object(bucket: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored payload and the object's HEAD response, read straight from S3."""
    s3 = boto3.client("s3")
    return json.loads(s3.get_object(Bucket=bucket, Key=KEY)["Body"].read()), s3.head_object(Bucket=bucket, Key=KEY)


def test_a_replica_with_an_empty_data_folder_serves_the_current_generation(
    start: Callable[..., TestClient], bucket: str, tmp_path: Path
) -> None:
    first = start(bucket, "replica-1")
    payload = one_table_payload("shared")
    assert first.post("/generator", json=payload).status_code == 201
    assert first.post("/shared", json={"label": "written on replica 1"}).status_code == 201
    stored, head = saved_object(bucket)
    assert stored == payload and head["Metadata"] == {"generation": "1"}

    second = start(bucket, "replica-2")  # same database and bucket, a folder it has never seen
    assert second.get("/shared/1").json() == {"id": 1, "label": "written on replica 1"}
    assert second.get("/health").json()["generation"] == first.get("/health").json()["generation"]
    assert not (tmp_path / "replica-1" / "payload.json").exists()  # S3 only: nothing kept on local disk
    assert not (tmp_path / "replica-2" / "payload.json").exists()

    newer = one_table_payload("newer")  # regeneration overwrites the object
    assert first.post("/generator", json=newer).status_code == 201
    stored, head = saved_object(bucket)
    assert stored == newer and head["Metadata"] == {"generation": "2"}
    assert second.app.runtime.refresh() is True  # the replica adopts it (a poll round)
    assert second.post("/newer", json={"label": "on replica 2"}).status_code == 201


def test_a_service_on_a_database_that_lacks_the_stored_generation_refuses_to_start(
    start: Callable[..., TestClient], bucket: str, tmp_path: Path
) -> None:
    """The payload is loaded from S3 at start-up: on an empty database it cannot be served, and the
    start-up error says where the payload came from."""
    S3PayloadStore(bucket, KEY).save(one_table_payload("elsewhere"), 7)
    with pytest.raises(StartupError, match=rf"does not match the saved payload \(s3://{bucket}/{KEY}\)"):
        start(bucket, "fresh")


def test_the_object_is_private_and_encrypted(bucket: str) -> None:
    assert S3PayloadStore(bucket, KEY).save({"a": 1}, 1) is True
    _, head = saved_object(bucket)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/json"
    grants = boto3.client("s3").get_object_acl(Bucket=bucket, Key=KEY)["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]  # the owner only
    assert all(grant["Grantee"].get("Type") == "CanonicalUser" for grant in grants)


def test_the_saved_payload_never_goes_backwards(bucket: str) -> None:
    store, other = S3PayloadStore(bucket, KEY), S3PayloadStore(bucket, KEY)  # two processes
    assert store.load() is None
    assert store.save({"generation": 2}, 2) is True
    assert other.save({"generation": 1}, 1) is False  # a follower that adopted #1 late
    assert other.load() == {"generation": 2}
    assert other.save({"generation": 2, "again": True}, 2) is False  # saved already: replicas write it once
    assert store.save({"generation": 3}, 3) is True
    assert store.load() == {"generation": 3}


def test_a_newer_save_between_read_and_write_wins(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conditional write (If-Match on the ETag just read) refuses to overwrite what another process
    wrote after the read; the retry then sees the newer generation and gives up."""
    store, racer = S3PayloadStore(bucket, KEY), S3PayloadStore(bucket, KEY)
    assert store.save({"generation": 1}, 1) is True
    read = store._saved

    def read_then_lose_the_race() -> tuple[int, str | None]:
        seen = read()
        if seen[0] == 1:
            assert racer.save({"generation": 5}, 5) is True
        return seen

    monkeypatch.setattr(store, "_saved", read_then_lose_the_race)
    assert store.save({"generation": 3}, 3) is False
    assert store.load() == {"generation": 5}
    assert saved_object(bucket)[1]["Metadata"] == {"generation": "5"}


def test_a_failed_save_is_reported_not_raised(start: Callable[..., TestClient], bucket: str) -> None:
    """The generation is committed and served even when S3 refuses the save; the response says so."""
    client = start(bucket, "replica")
    s3 = boto3.client("s3")
    s3.delete_bucket(Bucket=bucket)
    response = client.post("/generator", json=one_table_payload("unsaved"))
    assert response.status_code == 201, response.text
    assert any("could not be saved" in warning and f"s3://{bucket}/{KEY}" in warning
               for warning in response.json()["warnings"]), response.json()
    assert client.post("/unsaved", json={"label": "served anyway"}).status_code == 201


def test_a_corrupt_object_stops_the_start_up(bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=KEY, Body=b"{not json")
    with pytest.raises(StartupError, match=rf"s3://{bucket}/{KEY} is not JSON"):
        S3PayloadStore(bucket, KEY).load()


@pytest.mark.parametrize(("settings", "message"), [
    # S3 without a bucket: the setting to add
    ({"storage_type": "S3"}, "SCHEMA_STORAGE_TYPE=S3 needs AWS_S3_STORAGE_BUCKET_NAME"),
    # a bucket nobody created: its name and what to do
    ({"storage_type": "S3", "s3_bucket": "drg-no-such-bucket"},
     "The S3 bucket 'drg-no-such-bucket' (AWS_S3_STORAGE_BUCKET_NAME) does not exist: create it"),
    # a type we do not know
    ({"storage_type": "GCS"}, "SCHEMA_STORAGE_TYPE='GCS' is not supported; use LOCAL or S3"),
])
def test_bad_storage_settings_stop_the_start_up(aws: MotoServer, tmp_path: Path, settings: dict[str, str],
                                               message: str) -> None:
    options = Settings(database_url=f"sqlite:///{tmp_path}/db.sqlite3", data_dir=tmp_path / "data", **settings)
    with pytest.raises(StartupError) as raised:
        create_store(options).check_writable()
    assert message in str(raised.value)
    with pytest.raises(StartupError, match="AWS_S3_STORAGE_BUCKET_NAME|SCHEMA_STORAGE_TYPE"):
        create_app(options)  # the service refuses to start the same way


def test_storage_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"SCHEMA_STORAGE_TYPE": "s3", "AWS_S3_REGION": "eu-west-1",
                                  "AWS_S3_STORAGE_BUCKET_NAME": "payloads", "AWS_S3_STORAGE_OBJECT_NAME": "p.json"})
    assert (settings.storage_type, settings.s3_region, settings.s3_bucket, settings.s3_object_name) == (
        "S3", "eu-west-1", "payloads", "p.json")
    defaults = Settings.from_env({})
    assert (defaults.storage_type, defaults.s3_object_name) == ("LOCAL", "data_resource_generation_payload.json")
