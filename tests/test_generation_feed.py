"""The generation feed and generation races, in process on real databases: a committed generation notifies
`drg_generation` with its id (PostgreSQL), a rolled-back one never does; another process's feed adopts it at
once through LISTEN (polling set to a minute, so only a notification explains it), survives a dropped
listener, and polls where it cannot listen; two generations at once: the first to commit wins, the other
answers 409 and changes nothing. End-to-end with uvicorn processes: tests/e2e/test_e2e_replicas.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

import generator.runtime
from generator.errors import Problem
from generator.feed import GenerationFeed
from generator.hooks import hookimpl
from generator.models import ddl
from generator.runtime import Runtime
from tests.support.postgres import free_port
from tests.test_lifecycle import one_table_payload

postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
ADOPTION_LIMIT_S = 2.0  # the bound for a replica to serve a generation another one recorded
NO_POLLING = 60.0  # a poll interval no test waits for: adoption within seconds is the notification's doing


def wait_for(condition: str, check: Callable[[], bool], limit: float = 10.0) -> float:
    """Seconds until `check()` holds; fails after `limit`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"timed out after {limit} s waiting until {condition}"
        time.sleep(0.01)
    return time.monotonic() - started


def runtime_of(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.runtime  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def follow() -> Iterator[Callable[[Runtime], GenerationFeed]]:
    """Start a runtime's feed (as the lifespan does); every feed is closed at teardown, failed test or not."""
    runtimes: list[Runtime] = []

    def start(runtime: Runtime) -> GenerationFeed:
        runtimes.append(runtime)
        runtime.follow()
        assert runtime.feed is not None
        if runtime.feed.listen:
            wait_for("the feed listens", runtime.feed.listening.is_set)
        return runtime.feed

    yield start
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def listening(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection LISTENing on the channel, as a replica's feed does."""
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"LISTEN {ddl.CHANNEL}")
        yield connection


def notifications(connection: psycopg.Connection[Any], seconds: float) -> list[str]:
    return [n.payload for n in connection.notifies(timeout=seconds, stop_after=1)]


@postgresql_only
def test_a_committed_generation_notifies_its_id(
    make_client: Callable[..., TestClient], listening: psycopg.Connection[Any]
) -> None:
    client = make_client()
    assert client.post("/generator", json=one_table_payload("announced")).status_code == 201
    assert notifications(listening, 5.0) == [str(runtime_of(client).seen_id)]


@postgresql_only
def test_a_rolled_back_generation_never_notifies(
    make_client: Callable[..., TestClient], listening: psycopg.Connection[Any]
) -> None:
    runtime = runtime_of(make_client())

    def fail(*_: object) -> None:
        raise RuntimeError("the control plane's records failed")

    with pytest.raises(RuntimeError):
        runtime.generate(one_table_payload("rolled_back"), fail)
    assert notifications(listening, 0.5) == []
    assert ddl.latest_id(runtime.engine) == 0
    runtime.generate(one_table_payload("committed"))
    assert notifications(listening, 5.0) == [str(ddl.latest_id(runtime.engine))]  # nothing queued before it


class Applied:
    """A plugin recording `drg_generation_applied` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    @hookimpl
    def drg_generation_applied(self, generation: Any, created_tables: list[str]) -> None:
        self.calls.append((generation.digest, created_tables))


@postgresql_only
def test_the_feed_adopts_a_notified_generation_at_once_and_fires_the_hook(
    make_client: Callable[..., TestClient], follow: Callable[[Runtime], GenerationFeed]
) -> None:
    leader, plugin = make_client(), Applied()
    follower = runtime_of(make_client(plugins=(plugin,), poll_seconds=NO_POLLING))
    follow(follower)
    assert leader.post("/generator", json=one_table_payload("pushed")).status_code == 201
    digest = runtime_of(leader).current.generation.digest
    wait_for("the follower serves it", lambda: follower.current.generation.digest == digest, ADOPTION_LIMIT_S)
    wait_for("the hook is called", lambda: bool(plugin.calls), 1.0)  # just after the swap
    assert plugin.calls == [(digest, [])]  # adopted, so it created nothing


@postgresql_only
def test_the_feed_reconnects_and_catches_up_after_losing_its_connection(
    make_client: Callable[..., TestClient], database_url: str, follow: Callable[[Runtime], GenerationFeed]
) -> None:
    leader = make_client()
    follower = runtime_of(make_client(poll_seconds=NO_POLLING))
    feed = follow(follower)
    admin = create_engine(database_url)
    with admin.connect() as connection:
        ended = connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'drg-generation-feed' AND datname = current_database()").all()
    admin.dispose()
    assert ended == [(True,)]
    # Recorded while the listener is (likely) down: its notification is lost; the reconnection catches up.
    assert leader.post("/generator", json=one_table_payload("missed")).status_code == 201
    digest = runtime_of(leader).current.generation.digest
    wait_for("the follower serves it", lambda: follower.current.generation.digest == digest, 5.0)
    wait_for("the feed listens again", feed.listening.is_set)
    assert leader.post("/generator", json=one_table_payload("after")).status_code == 201
    digest = runtime_of(leader).current.generation.digest
    wait_for("the follower serves the next", lambda: follower.current.generation.digest == digest, ADOPTION_LIMIT_S)


def test_without_listening_the_feed_polls(
    make_client: Callable[..., TestClient], follow: Callable[[Runtime], GenerationFeed]
) -> None:
    """SQLite always, PostgreSQL when listening is off."""
    leader = make_client()
    follower = runtime_of(make_client(poll_seconds=0.2))
    follower.listen = False
    feed = follow(follower)
    assert leader.post("/generator", json=one_table_payload("polled")).status_code == 201
    digest = runtime_of(leader).current.generation.digest
    wait_for("the follower serves it", lambda: follower.current.generation.digest == digest, ADOPTION_LIMIT_S)
    assert not feed.listen and not feed.listening.is_set()


def test_close_stops_the_feed_promptly(
    make_client: Callable[..., TestClient], follow: Callable[[Runtime], GenerationFeed]
) -> None:
    runtime = runtime_of(make_client(poll_seconds=NO_POLLING))
    feed = follow(runtime)
    assert feed.running
    started = time.monotonic()
    runtime.close()
    assert time.monotonic() - started < 1.0
    assert not feed.running


def test_an_unreachable_database_leaves_the_feed_polling() -> None:
    """The listener cannot connect: logged, retried with backoff, and the poll goes on; nothing raises."""
    engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing")
    wakes: list[float] = []
    feed = GenerationFeed(engine, 0.1, lambda: wakes.append(time.monotonic()))
    feed.start()
    wait_for("three polls", lambda: len(wakes) >= 3, 5.0)
    assert not feed.listening.is_set()
    started = time.monotonic()
    feed.close()
    assert time.monotonic() - started < 1.0
    engine.dispose()


@pytest.fixture
def paused_parse(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """The first generation to parse its payload stops there (after noting the newest recorded generation)
    until `go` is set; `based` says it got there. Later generations pass."""
    based, go = threading.Event(), threading.Event()
    parse = generator.runtime.parse_payload

    def paused(payload: dict[str, Any]) -> Any:
        if not based.is_set():
            based.set()
            assert go.wait(10)
        return parse(payload)

    monkeypatch.setattr(generator.runtime, "parse_payload", paused)
    return based, go


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `work` in a thread; the list gets its result or the exception it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_generation_committed_meanwhile_wins_and_the_other_answers_409(
    make_client: Callable[..., TestClient], paused_parse: tuple[threading.Event, threading.Event]
) -> None:
    leader, follower = runtime_of(make_client()), runtime_of(make_client())
    based, go = paused_parse
    thread, outcome = in_thread(lambda: follower.generate(one_table_payload("loser")))
    assert based.wait(10)
    leader.generate(one_table_payload("winner"))  # commits while the follower's generation is under way
    go.set()
    thread.join(30)
    [refused] = outcome
    assert isinstance(refused, Problem) and refused.status == 409, refused
    assert refused.ext == {"generation": leader.seen_id}
    assert ddl.latest(leader.engine).digest == leader.current.generation.digest  # type: ignore[union-attr]
    assert "loser" not in ddl.latest(leader.engine).payload  # type: ignore[union-attr]
    assert follower.refresh() is True
    assert follower.current.generation.digest == leader.current.generation.digest


def test_the_same_payload_at_once_is_adopted_not_refused(
    make_client: Callable[..., TestClient], paused_parse: tuple[threading.Event, threading.Event]
) -> None:
    leader, follower = runtime_of(make_client()), runtime_of(make_client())
    based, go = paused_parse
    thread, outcome = in_thread(lambda: follower.generate(one_table_payload("same")))
    assert based.wait(10)
    applied = leader.generate(one_table_payload("same"))
    go.set()
    thread.join(30)
    [adopted] = outcome
    assert applied.changed and not adopted.changed  # type: ignore[attr-defined]
    assert follower.current.generation.digest == applied.generation.digest
    assert follower.seen_id == leader.seen_id == ddl.latest_id(leader.engine)


@postgresql_only
def test_a_generation_in_progress_elsewhere_refuses_the_other_at_once(
    make_client: Callable[..., TestClient],
) -> None:
    leader, follower = runtime_of(make_client()), runtime_of(make_client())
    inside, release = threading.Event(), threading.Event()

    def hold(*_: object) -> None:
        inside.set()
        assert release.wait(10)

    thread, outcome = in_thread(lambda: leader.generate(one_table_payload("slow"), hold))
    assert inside.wait(10)
    started = time.monotonic()
    with pytest.raises(Problem) as refused:
        follower.generate(one_table_payload("impatient"))
    assert time.monotonic() - started < 2.0  # not after the lock timeout: at once
    assert refused.value.status == 409
    release.set()
    thread.join(30)
    assert outcome[0].changed  # type: ignore[attr-defined]
    assert ddl.latest(leader.engine).digest == leader.current.generation.digest  # type: ignore[union-attr]


def test_a_lagging_replica_may_still_regenerate_after_a_generation_elsewhere(
    make_client: Callable[..., TestClient],
) -> None:
    """Not a race: the other generation had committed before this one started."""
    leader, follower = make_client(), make_client()
    assert leader.post("/generator", json=one_table_payload("first")).status_code == 201
    assert follower.post("/generator", json=one_table_payload("second")).status_code == 201
    assert runtime_of(leader).refresh() is True
    assert runtime_of(leader).current.generation.digest == runtime_of(follower).current.generation.digest


def test_reposting_what_a_lagging_replica_serves_brings_it_back(make_client: Callable[..., TestClient]) -> None:
    """The replica still serves X, but Y was recorded since: posting X again is a new generation, not a no-op."""
    leader, follower = make_client(), make_client()
    assert leader.post("/generator", json=one_table_payload("x")).status_code == 201
    assert runtime_of(follower).refresh() is True
    assert leader.post("/generator", json=one_table_payload("y")).status_code == 201
    assert follower.post("/generator", json=one_table_payload("x")).status_code == 201
    newest = ddl.latest(runtime_of(leader).engine)
    assert newest is not None and newest.digest == runtime_of(follower).current.generation.digest
    assert runtime_of(leader).refresh() is True
    assert leader.get("/x").status_code == 200
