"""alembic's environment for the platform's migrations, run by `generator.migrations.upgrade` on the
connection it opened (its transaction, under its lock). Not meant for the `alembic` command: use
`drg db upgrade` / `drg db current`."""

from __future__ import annotations

from alembic import context

from generator.migrations.run import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("The platform's migrations run on a connection: use `drg db upgrade` or "
                       "generator.migrations.upgrade(engine)")
# The caller's transaction is already open, so alembic neither begins nor commits one (all or nothing).
context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
