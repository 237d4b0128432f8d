"""Generation lifecycle defects found by the review: where the payload is saved, which generation a
restarted process serves, and boot on a fresh PostgreSQL with several workers at once."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from generator.app import create_app
from generator.config import Settings
from generator.errors import StartupError
from generator.models import ddl
from generator.models.engine import create_database_engine
from generator.storage.local import LocalPayloadStore
from tests.test_lifecycle import one_table_payload


def test_an_unwritable_payload_path_refuses_to_boot(database_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the payload's folder should be")  # even root cannot write below a file
    settings = Settings(database_url=database_url, payload_path=blocker / "payload.json")
    with pytest.raises(StartupError, match="PAYLOAD_PATH") as refused:
        create_app(settings)
    assert str(blocker / "payload.json") in str(refused.value)


def test_a_failed_save_after_commit_is_a_warning_not_a_500(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    folder = tmp_path / "payloads"
    client = make_client(payload_path=folder / "payload.json")
    shutil.rmtree(folder)
    folder.write_text("the folder became a file after start-up")
    response = client.post("/generator", json=one_table_payload("kept"))
    assert response.status_code == 201, response.text
    assert any("could not be saved" in w for w in response.json()["warnings"])
    assert client.post("/kept", json={"label": "served anyway"}).status_code == 201


def test_saves_never_go_backwards(tmp_path: Path) -> None:
    store = LocalPayloadStore(tmp_path / "payload.json")
    assert store.save({"generation": 2}, 2) is True
    assert store.save({"generation": 1}, 1) is False  # a follower adopting 1 late
    assert store.load() == {"generation": 2}
    assert store.save({"generation": 3}, 3) is True
    assert store.load() == {"generation": 3}


def test_concurrent_saves_keep_the_newest(tmp_path: Path) -> None:
    store = LocalPayloadStore(tmp_path / "payload.json")
    threads = [threading.Thread(target=store.save, args=({"generation": n}, n)) for n in range(1, 41)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.load() == {"generation": 40}


def test_the_newest_recorded_generation_wins_over_an_older_file(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    first = make_client()
    assert first.post("/generator", json=one_table_payload("v1")).status_code == 201
    older = json.loads((tmp_path / "payload.json").read_text())
    assert first.post("/generator", json=one_table_payload("v2")).status_code == 201
    (tmp_path / "payload.json").write_text(json.dumps(older))  # as a late follower once left it
    restarted = make_client()
    assert restarted.get("/v2").status_code == 200
    assert "v2" in json.loads((tmp_path / "payload.json").read_text())["data_resource_schema"]["data"][
        "dataDictionary"][0]["name"]  # the file is brought up to date


def test_workers_booting_at_once_on_a_fresh_postgresql_all_start(postgres_url: str) -> None:
    engines = [create_database_engine(postgres_url) for _ in range(8)]
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def boot(engine: Any) -> None:
        barrier.wait()
        try:
            ddl.ensure_platform_tables(engine)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=boot, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert failures == []
    check = create_engine(postgres_url)
    with check.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM drg_generations")).scalar() == 0
    check.dispose()
