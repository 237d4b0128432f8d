"""drg_generations.created_by, who posted each generation.

The principal's subject; None for rows recorded before, and in development mode (callers are anonymous).

A database whose `drg_generations` was made by `create_all` of the live tables (the release that added the
column, or a start-up that still runs `create_all` before migrating) has the column already: kept as it is.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("drg_generations")}
    if "created_by" not in columns:
        op.add_column("drg_generations", sa.Column("created_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drg_generations") as batch:  # SQLite before 3.35 has no DROP COLUMN
        batch.drop_column("created_by")
