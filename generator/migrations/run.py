"""Bring the platform's tables to the newest revision: `upgrade(engine)`, at start-up and from `drg db upgrade`.

Every process runs it when it boots, so workers and replicas that boot together take turns: the whole
upgrade is one transaction under a PostgreSQL advisory lock (the key `drg-platform`, the one start-up's
`create_all` of the platform tables took before migrations, so the two serialise while both exist); on
SQLite the engine's BEGIN IMMEDIATE serialises writers already. The second process in line finds the
database at head and does nothing. PostgreSQL DDL is transactional, so a failed upgrade leaves the tables
as they were; on SQLite the engine's explicit BEGIN makes DDL join the transaction too.

At head an upgrade is one read (the version table's row), and nothing at all for an engine this process
has already brought to head, or found at a newer release's revision (warned about once): the table modules
call `upgrade` before their first use of a table. alembic itself (0.1-0.3 s to import) is imported on first
use, not with this module."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary, WeakSet

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from generator.errors import StartupError
from generator.models.engine import for_writes

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "drg_alembic_version"  # reserved prefix: no generated resource or user's alembic can clash
HERE = Path(__file__).parent
LOCK_KEY = int.from_bytes(hashlib.sha256(b"drg-platform").digest()[:8], "big", signed=True)
DEFAULT_LOCK_TIMEOUT_MS = 5000
log = logging.getLogger(__name__)
_at_head: WeakSet[Engine] = WeakSet()
# engines found at a newer release's revision, and that revision: read and warned about once per process
_newer: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()
READ_ONLY = "25006"  # PostgreSQL's read_only_sql_transaction (a hot standby, or default_transaction_read_only)


class MigrationFailed(StartupError):
    """The platform's tables could not be brought to the newest revision; nothing was changed."""


@dataclass(frozen=True)
class Upgraded:
    """The revision before and after an upgrade (None before: the database had no version table)."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def config(connection: Connection | None = None) -> Config:
    """An alembic configuration without a file: the scripts are this package; env.py runs on `connection`."""
    from alembic.config import Config

    settings = Config()
    settings.set_main_option("script_location", str(HERE))
    settings.attributes["connection"] = connection
    return settings


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The newest revision and all of them (the scripts are read once per process)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(config())
    heads = scripts.get_heads()
    if len(heads) != 1:
        raise MigrationFailed(f"The platform's migrations have {len(heads)} heads ({', '.join(heads)}): a "
                              "revision's down_revision is wrong; merge them into one line")
    return heads[0], frozenset(script.revision for script in scripts.walk_revisions())


def head() -> str:
    """The newest revision this release has."""
    return _revisions()[0]


def is_newer(revision: str | None) -> bool:
    """A revision this release does not know: a newer release has migrated the database."""
    return revision is not None and revision not in _revisions()[1]


def current(engine: Engine) -> str | None:
    """The database's revision; None when it has no version table (fresh, or made before migrations)."""
    try:
        with engine.connect() as connection:
            return _version(connection)
    except (OperationalError, ProgrammingError):
        if inspect(engine).has_table(VERSION_TABLE):  # the failure was something else (it raises again here
            raise  # if the database is unreachable)
        return None


def upgrade(engine: Engine, *, lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS) -> Upgraded:
    """Run every revision the database lacks, in one transaction; safe to call from any number of processes
    at once. A DDL statement waits at most `lock_timeout_ms` for readers of its table (PostgreSQL): a
    start-up fails with `MigrationFailed` rather than stall every reader queued behind it.

    A database a newer release has migrated is left as it is, with a warning: revisions keep what the
    previous release reads working (see README.md), so a replica of that release may still restart during a
    rolling upgrade, or after a rollback."""
    target = head()
    if engine in _at_head:
        return Upgraded(target, target)
    if (newer := _newer.get(engine)) is not None:  # the table modules call this before each first use
        return Upgraded(newer, newer)
    before = current(engine)
    if before != target and not is_newer(before):
        _refuse_on_standby(engine, before)
        before = _upgrade_locked(engine, lock_timeout_ms)
    if before is not None and is_newer(before):
        log.warning("The platform's tables are at revision %s, newer than this release's %s: left as they are",
                    before, target)
        _newer[engine] = before
        return Upgraded(before, before)
    _at_head.add(engine)
    return Upgraded(before, target)


def _refuse_on_standby(engine: Engine, before: str | None) -> None:
    """A hot standby (DATABASE_URL naming a read-only server) cannot be migrated: say where to do it."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        if connection.execute(text("SELECT pg_is_in_recovery()")).scalar():
            raise MigrationFailed(_standby_message(before))


def _standby_message(before: str | None, what: str = "a read-only standby") -> str:
    return (f"DATABASE_URL is {what} at revision {before or 'none (no platform tables)'}; this "
            f"release needs {head()}: upgrade the primary first (`drg db upgrade` with DATABASE_URL naming it), "
            "then start this process again once the standby has replayed it")


def _upgrade_locked(engine: Engine, lock_timeout_ms: int) -> str | None:
    """Take the lock, look again (another process may have upgraded meanwhile), migrate, commit."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    try:
        with for_writes(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                connection.execute(text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
            before = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}) \
                .get_current_revision()
            if before != head() and not is_newer(before):
                _announce(connection, before)
                command.upgrade(config(connection), "head")
            return before
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == READ_ONLY:
            what = "read-only (a standby, or default_transaction_read_only is on)"
            raise MigrationFailed(_standby_message(current(engine), what)) from None
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise MigrationFailed(
            f"Upgrading the platform's tables (drg_*) to revision {head()} failed, nothing was changed: "
            f"{reason}. If a table was locked, retry once the transaction holding it ends; `drg db upgrade` "
            "runs the same upgrade from a shell") from None


def _version(connection: Connection) -> str | None:
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _announce(connection: Connection, before: str | None) -> None:
    if before is not None:
        log.info("Upgrading the platform's tables from revision %s to %s", before, head())
    elif any(name.startswith("drg_") for name in inspect(connection).get_table_names()):
        log.info("The platform's tables were made before migrations (no %s): adopting them at revision 0001, "
                 "then upgrading to %s", VERSION_TABLE, head())
    else:
        log.info("Creating the platform's tables (revision %s)", head())
