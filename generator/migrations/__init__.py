"""Migrations of the platform's own `drg_*` tables (alembic, run programmatically: no alembic.ini).

`upgrade(engine)` brings a database to the newest revision under a lock (start-up, `drg db upgrade`);
`current(engine)` and `head()` say where it is and where it should be. See README.md."""

from generator.migrations.run import VERSION_TABLE, MigrationFailed, Upgraded, current, head, is_newer, upgrade

__all__ = ["VERSION_TABLE", "MigrationFailed", "Upgraded", "current", "head", "is_newer", "upgrade"]
