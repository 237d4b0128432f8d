"""Several replicas on one PostgreSQL: separate `uvicorn wsgi:app` processes on loopback, each with its own
payload file, sharing one database. Polling is set to 30 s, so a replica serving another's generation within
2 s is the LISTEN/NOTIFY feed's doing (generator/feed.py).

- A regeneration through one replica is served by all three within 2 s, while a load loop on every replica
  sees no 5xx and no connection error.
- Two regenerations posted at once to two replicas: one 201, one 409, and every replica ends on the winner.
- A replica started later serves the current generation, and follows the next.
- A replica killed with SIGKILL in the middle of a 300-table generation leaves the database and the others on
  the previous generation; the next generation goes through."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.e2e.helpers import assert_problem
from tests.support.live_server import LiveServer, StartLiveServer

NOTIFY_ONLY = {"GENERATION_POLL_SECONDS": "30"}
PROPAGATION_LIMIT_S = 2.0  # the bound: regeneration accepted → every replica serves it
WAIT_LIMIT_S = 30.0  # anything else the tests wait for
LOAD_THREADS_PER_REPLICA = 2


def tables_payload(prefix: str, count: int) -> dict[str, Any]:
    """`count` tables `<prefix>0..`, each `id` and `label`, served at /t (GET, POST) and /t/{id} (GET)."""
    dictionary, paths = [], {}
    for index in range(count):
        name = f"{prefix}{index}"
        dictionary.append({"name": name, "tableSchema": {
            "fields": [{"name": "id", "type": "integer"}, {"name": "label", "type": "string"}], "primaryKey": "id"}})
        paths |= {f"/{name}": {"get": {}, "post": {}}, f"/{name}/{{id}}": {"get": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": dictionary}, "api": {"apiSpec": {"paths": paths}}}}


def combined(*payloads: dict[str, Any]) -> dict[str, Any]:
    tables = [t for p in payloads for t in p["data_resource_schema"]["data"]["dataDictionary"]]
    paths = {k: v for p in payloads for k, v in p["data_resource_schema"]["api"]["apiSpec"]["paths"].items()}
    return {"data_resource_schema": {"data": {"dataDictionary": tables}, "api": {"apiSpec": {"paths": paths}}}}


def wait_for(condition: str, check: Callable[[], bool], limit: float = WAIT_LIMIT_S) -> float:
    """Seconds until `check()` holds; fails after `limit`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"timed out after {limit} s waiting until {condition}"
        time.sleep(0.01)
    return time.monotonic() - started


def get(server: LiveServer, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", timeout=10, trust_env=False)


def post_generation(server: LiveServer, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/generator", json=payload, timeout=60, trust_env=False)


def digest(server: LiveServer) -> str:
    return str(get(server, "/generator").json()["digest"])


def start_replicas(live_server: StartLiveServer, database_url: str, workdir: Path, count: int) -> list[LiveServer]:
    """`count` replicas started side by side, each with a folder (and so a payload file) of its own."""
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(live_server, database_url, workdir / f"replica{n}", NOTIFY_ONLY) for n in range(count)]
        return [future.result() for future in futures]


def all_serve(replicas: list[LiveServer], path: str, since: float) -> list[float]:
    """Seconds from `since` until each replica answered 200 on `path`; at most the propagation limit."""
    seconds = []
    for replica in replicas:
        remaining = PROPAGATION_LIMIT_S - (time.monotonic() - since)
        wait_for(f"{replica.url} serves {path}", lambda r=replica: get(r, path).status_code == 200,  # type: ignore[misc]
                 max(remaining, 0.0))
        seconds.append(time.monotonic() - since)
    return seconds


@dataclass
class LoadLoop:
    """Keep-alive clients sending GET `path` to every replica until stopped, recording every outcome."""

    replicas: list[LiveServer]
    path: str
    stop: threading.Event = field(default_factory=threading.Event)
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._run, args=(replica,), daemon=True)
                        for replica in self.replicas for _ in range(LOAD_THREADS_PER_REPLICA)]
        for thread in self.threads:
            thread.start()

    def _run(self, replica: LiveServer) -> None:
        with httpx.Client(base_url=replica.url, timeout=10.0, trust_env=False) as http:
            while not self.stop.is_set():
                try:
                    status = http.get(self.path).status_code
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(f"{replica.url}: {exc!r}")
                    continue
                with self.lock:
                    self.statuses.append(status)

    def count(self) -> int:
        with self.lock:
            return len(self.statuses) + len(self.errors)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)
        assert not any(thread.is_alive() for thread in self.threads), "a load thread hung"


def test_a_regeneration_reaches_every_replica_within_2_s_under_load(
    postgres_url: str, live_server: StartLiveServer, tmp_path: Path
) -> None:
    replicas = start_replicas(live_server, postgres_url, tmp_path, 3)
    first = tables_payload("stay", 1)
    assert post_generation(replicas[0], first).status_code == 201
    all_serve(replicas, "/stay0", time.monotonic())
    load = LoadLoop(replicas, "/stay0")
    load.start()
    try:
        wait_for("the load loop runs", lambda: load.count() >= 50)
        response = post_generation(replicas[1], combined(first, tables_payload("fresh", 1)))
        accepted = time.monotonic()
        assert response.status_code == 201, response.text
        seconds = all_serve(replicas, "/fresh0", accepted)
        before = load.count()
        wait_for("the load loop runs on after the swap", lambda: load.count() >= before + 50)
    finally:
        load.finish()
    print(f"\nregeneration accepted -> served by each replica: {', '.join(f'{s:.3f} s' for s in seconds)}")
    assert not load.errors, f"{len(load.errors)} connection errors: {load.errors[:5]}"
    assert set(load.statuses) == {200}, f"statuses seen under load: {sorted(set(load.statuses))}"
    assert len({digest(replica) for replica in replicas}) == 1


def test_two_regenerations_at_once_one_wins_and_the_other_gets_409(
    postgres_url: str, live_server: StartLiveServer, tmp_path: Path
) -> None:
    replicas = start_replicas(live_server, postgres_url, tmp_path, 3)
    # 40 tables each: parsing alone takes long enough that the two requests surely overlap.
    payloads = [tables_payload("left", 40), tables_payload("right", 40)]
    barrier = threading.Barrier(2)

    def post(index: int) -> httpx.Response:
        barrier.wait(10)
        return post_generation(replicas[index], payloads[index])

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(post, range(2)))
    answered = time.monotonic()
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    winner, loser = (0, 1) if responses[0].status_code == 201 else (1, 0)
    assert "nothing was changed" in assert_problem(responses[loser], 409)["detail"]
    winning_path = "/left0" if winner == 0 else "/right0"
    all_serve(replicas, winning_path, answered)
    assert {digest(replica) for replica in replicas} == {responses[winner].json()["digest"]}
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            recorded = connection.execute(text("SELECT digest FROM drg_generations")).scalars().all()
            losing_table = ("right0", "left0")[winner]
            exists = connection.execute(text("SELECT to_regclass(:name)"), {"name": losing_table}).scalar()
    finally:
        engine.dispose()
    assert recorded == [responses[winner].json()["digest"]]
    assert exists is None


def test_a_replica_started_later_serves_the_current_generation(
    postgres_url: str, live_server: StartLiveServer, tmp_path: Path
) -> None:
    [early] = start_replicas(live_server, postgres_url, tmp_path / "early", 1)
    assert post_generation(early, tables_payload("old", 1)).status_code == 201
    assert post_generation(early, tables_payload("current", 1)).status_code == 201
    [late] = start_replicas(live_server, postgres_url, tmp_path / "late", 1)
    assert digest(late) == digest(early)
    assert get(late, "/current0").status_code == 200
    assert get(late, "/old0").status_code == 404
    response = post_generation(late, tables_payload("next", 1))  # and it takes part from then on
    assert response.status_code == 201, response.text
    all_serve([early, late], "/next0", time.monotonic())


def kill(server: LiveServer) -> None:
    """SIGKILL: no shutdown, no rollback from the process; PostgreSQL sees the connection drop."""
    process = server._process  # noqa: SLF001 - LiveServer only stops gracefully
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def test_a_replica_killed_mid_generation_leaves_everyone_on_the_previous_generation(
    postgres_url: str, live_server: StartLiveServer, tmp_path: Path
) -> None:
    doomed, *others = start_replicas(live_server, postgres_url, tmp_path, 3)
    previous = tables_payload("before", 1)
    assert post_generation(others[0], previous).status_code == 201
    all_serve([doomed, *others], "/before0", time.monotonic())
    previous_digest = digest(others[0])
    engine = create_engine(postgres_url)
    holder = text("SELECT a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                  "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()")

    def lock_state() -> str | None:
        with engine.connect() as connection:
            return connection.execute(holder).scalar()

    outcome: list[object] = []
    big = threading.Thread(target=lambda: outcome.append(_try(lambda: post_generation(doomed, tables_payload(
        "big", 300)))))
    try:
        big.start()
        wait_for("the 300-table generation's transaction is open", lambda: lock_state() is not None)
        # Past its DDL if it gets there soon (then it waits, idle in transaction, for its app to build).
        _try(lambda: wait_for("its DDL ran", lambda: lock_state() == "idle in transaction", 2.0))
        print(f"\nkilled with its generation's transaction {lock_state()}")
        kill(doomed)
        big.join(WAIT_LIMIT_S)
        wait_for("PostgreSQL has rolled the transaction back", lambda: lock_state() is None, 10.0)
        with engine.connect() as connection:
            recorded = connection.execute(text("SELECT digest FROM drg_generations ORDER BY id")).scalars().all()
            created = connection.execute(text("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'big%'")).scalar()
    finally:
        engine.dispose()
    assert isinstance(outcome[0], httpx.TransportError), outcome  # it never answered
    assert recorded == [previous_digest]
    assert created == 0
    for replica in others:
        assert digest(replica) == previous_digest
        assert get(replica, "/before0").status_code == 200
        assert get(replica, "/big0").status_code == 404
    response = post_generation(others[1], combined(previous, tables_payload("after", 1)))  # nothing left locked
    assert response.status_code == 201, response.text
    all_serve(others, "/after0", time.monotonic())


def _try(work: Callable[[], object]) -> object:
    """`work()`'s result, or the exception it raised."""
    try:
        return work()
    except Exception as exc:  # noqa: BLE001 - handed to the caller to assert on
        return exc
