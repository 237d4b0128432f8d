"""The platform's own tables (drg_*) are made and upgraded by migrations (generator/migrations), on both
databases: a fresh database gets them all, one made by an earlier release (create_all, no version table) is
adopted with its rows, processes booting at once take turns, and a database at head costs one read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, String, event, insert, inspect, select, text

from generator.datasets.tables import ensure_tables as datasets_tables
from generator.lifecycle.tables import create_tables as lifecycle_tables
from generator.metadata.tables import ensure_tables as metadata_tables
from generator.migrations import VERSION_TABLE, MigrationFailed, current, head, upgrade
from generator.migrations.live import platform_metadata
from generator.migrations.run import config
from generator.models import blind_keys
from generator.models.engine import create_database_engine, for_writes
from generator.models.tables import generations
from generator.products.tables import products

OPENED: list[Engine] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().dispose()


def opened(url: str) -> Engine:
    """An engine disposed after the test."""
    OPENED.append(create_database_engine(url))
    return OPENED[-1]


def fresh(engine: Engine) -> Engine:
    """Another engine on the same database, as another process (or the same one restarted) would have."""
    return opened(engine.url.render_as_string(hide_password=False))


@pytest.fixture
def engine(database_url: str) -> Engine:
    return opened(database_url)


def differences(engine: Engine, metadata: list[MetaData] | None = None) -> list[Any]:
    """alembic's comparison of the database's drg_* tables with the live table definitions."""
    def ours(name: str | None, kind: str, _parent: Any) -> bool:
        return kind != "table" or (name is not None and name.startswith("drg_") and name != VERSION_TABLE)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": ours})
        return compare_metadata(context, metadata or platform_metadata())


def made_by_an_earlier_release(engine: Engine, *, lazily_made: bool) -> None:
    """The tables as the last release before migrations left them: revision 0001's, without a version table.
    `lazily_made=False`: without the tables that release made only on a package's first use."""
    with for_writes(engine).begin() as connection:
        command.upgrade(config(connection), "0001")
        connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        if not lazily_made:
            for name in ("drg_blind_keys", "drg_lc_variables", "drg_lc_tasks", "drg_lc_stages"):
                connection.execute(text(f"DROP TABLE {name}"))


def statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_fresh_database_upgraded_to_head_matches_every_platform_table(engine: Engine) -> None:
    result = upgrade(engine)
    assert (result.before, result.after, result.changed) == (None, head(), True)
    assert current(fresh(engine)) == head()
    assert differences(engine) == []  # a table changed without a revision fails here, naming the change


def test_the_comparison_notices_a_table_changed_without_a_revision(engine: Engine) -> None:
    """Guards the test above: an extra live column must show up as a difference."""
    upgrade(engine)
    changed = MetaData()
    for metadata in platform_metadata():
        for table in metadata.tables.values():
            table.to_metadata(changed)
    changed.tables["drg_generations"].append_column(Column("reviewed_by", String(200)))
    found = differences(engine, [changed])
    assert [(d[0], d[3].name) for d in found] == [("add_column", "reviewed_by")]


@pytest.mark.parametrize("lazily_made", [True, False], ids=["all-tables", "without-first-use-tables"])
def test_a_database_made_before_migrations_is_adopted_and_keeps_its_rows(engine: Engine, lazily_made: bool) -> None:
    made_by_an_earlier_release(engine, lazily_made=lazily_made)
    moment = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with for_writes(engine).begin() as connection:
        connection.execute(text("INSERT INTO drg_generations (digest, payload, created_at) VALUES ('d1', '{}', :at)"),
                           {"at": moment})
        connection.execute(insert(products).values(name="census", owner="team-a", body="{}", created_at=moment,
                                                   updated_at=moment))
    assert current(engine) is None
    result = upgrade(fresh(engine))
    assert (result.before, result.after) == (None, head())
    with engine.connect() as connection:
        assert connection.execute(select(generations.c.digest, generations.c.created_by)).all() == [("d1", None)]
        assert connection.execute(select(products.c.name, products.c.owner)).all() == [("census", "team-a")]
    assert current(engine) == head()
    assert differences(engine) == []  # the tables the earlier release never made are there too


def test_start_up_creating_the_live_tables_first_then_migrating_is_harmless(engine: Engine) -> None:
    """While start-up still runs `create_all` of the live core tables before migrating (created_by included)."""
    platform_metadata()[0].create_all(engine, checkfirst=True)
    result = upgrade(engine)
    assert (result.before, result.after) == (None, head())
    assert differences(engine) == []


@pytest.mark.parametrize("ensure", [blind_keys.ensure_table, metadata_tables, datasets_tables, lifecycle_tables],
                         ids=["blind-keys", "metadata", "datasets", "lifecycle"])
def test_each_package_that_mounts_migrates_the_platform_tables(engine: Engine, ensure: Any) -> None:
    ensure(engine)
    assert current(engine) == head()
    assert differences(engine) == []


def test_at_head_an_upgrade_is_one_read_and_then_nothing(engine: Engine) -> None:
    upgrade(engine)
    restarted = fresh(engine)
    seen = statements(restarted)
    result = upgrade(restarted)
    assert not result.changed and result.before == result.after == head()
    assert seen == [f"SELECT version_num FROM {VERSION_TABLE}"]
    upgrade(restarted)
    assert len(seen) == 1  # this process already brought this engine to head


def test_a_database_a_newer_release_migrated_is_left_as_it_is(engine: Engine,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """A replica of this release restarting during a rolling upgrade (or after a rollback) still starts."""
    upgrade(engine)
    with for_writes(engine).begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    result = upgrade(fresh(engine))
    assert (result.before, result.after, result.changed) == ("9999", "9999", False)
    assert "revision 9999, newer than this release's" in caplog.text
    assert current(engine) == "9999"
    caplog.clear()
    again = upgrade(restarted := fresh(engine))
    seen: list[str] = []
    event.listen(restarted, "before_cursor_execute", lambda *args: seen.append(args[2]))
    for _ in range(3):  # the table modules call it before each first use: read and warned about once
        assert upgrade(restarted) == again
    assert seen == [] and caplog.text.count("newer than this release's") == 1


def test_an_upgrade_that_fails_midway_changes_nothing(engine: Engine) -> None:
    """All or nothing on both databases: a user's index already holds a name revision 0001 gives one of its
    indexes, so the upgrade fails after creating most tables; none of them is left behind."""
    with for_writes(engine).begin() as connection:
        connection.execute(text("CREATE TABLE visits (name VARCHAR(20))"))
        connection.execute(text("CREATE INDEX ix_drg_datasets_name ON visits (name)"))
    with pytest.raises(MigrationFailed, match="ix_drg_datasets_name") as failed:
        upgrade(engine)
    assert "nothing was changed" in str(failed.value)
    assert sorted(inspect(engine).get_table_names()) == ["visits"]
    assert current(engine) is None


def test_on_postgresql_an_upgrade_does_not_wait_forever_behind_a_reader(postgres_url: str) -> None:
    """ALTER TABLE waits for readers of the table and, queued, blocks every later reader: past the lock
    timeout the upgrade gives up, saying why, and the tables stay at their revision."""
    engine = opened(postgres_url)
    with for_writes(engine).begin() as connection:
        command.upgrade(config(connection), "0001")
    with engine.connect() as reader:  # a read transaction left open on drg_generations
        reader.execute(text("SELECT count(*) FROM drg_generations"))
        with pytest.raises(MigrationFailed, match="lock timeout"):
            upgrade(fresh(engine), lock_timeout_ms=200)
        reader.rollback()
    assert current(engine) == "0001"
    assert "created_by" not in {c["name"] for c in inspect(engine).get_columns("drg_generations")}
    assert upgrade(fresh(engine)).after == head()  # once the reader is gone


def test_processes_booting_at_once_take_turns_on_postgresql(postgres_url: str) -> None:
    """Ten processes boot on a fresh database at once (start-up's `ddl.ensure_platform_tables` is `upgrade`):
    they take turns under the advisory lock, one migrates and the others find the database at head."""
    engines = [opened(postgres_url) for _ in range(10)]
    start = threading.Barrier(len(engines))
    results: list[Any] = [None] * len(engines)

    def boot(index: int) -> None:
        start.wait()
        try:
            results[index] = upgrade(engines[index])
        except Exception as exc:  # reported below, with the others
            results[index] = exc

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not isinstance(r, Exception) and r is not None for r in results), results
    assert sum(r.changed for r in results) == 1  # one migrated; the others found the database at head
    with engines[0].connect() as connection:
        assert connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [head()]
    assert differences(engines[0]) == []


def test_start_up_migrates_with_the_settings_lock_timeout(make_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DDL_LOCK_TIMEOUT_MS bounds start-up's migrations too, not only generations' DDL."""
    from generator.models import ddl

    seen: list[dict[str, Any]] = []
    migrate = ddl.upgrade
    monkeypatch.setattr(ddl, "upgrade", lambda engine, **options: seen.append(options) or migrate(engine, **options))
    make_client(lock_timeout_ms=1234)
    assert seen[0] == {"lock_timeout_ms": 1234}
