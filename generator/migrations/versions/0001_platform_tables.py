"""The platform's own tables, as the last release before migrations made them (commit 28fbcb7).

A frozen snapshot: every table is written out here, never imported from the live `MetaData`, so a later
change to a table module cannot change what this revision does.

Releases before migrations created these tables with `create_all(checkfirst=True)`, each package its own
and some only on first use (`drg_blind_keys`, the metadata graph's, the datasets', the lifecycle's). So a
database they made may hold any subset: this revision keeps each table it finds (rows and all) and creates
the missing ones, which is how such a database is adopted at 0001. On a fresh database it creates them all.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, build in TABLES:
        if name not in present:
            build(name)


def downgrade() -> None:
    for name, _ in reversed(TABLES):
        op.drop_table(name)


def _moment(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _name(length: int, name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _generations(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _name(64, "digest"),
        sa.Column("payload", sa.Text(), nullable=False),
        _moment("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_drg_generations"),
    )


def _tableschemas(name: str) -> None:
    op.create_table(
        name,
        _name(200, "name"),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_drg_tableschemas"),
    )


def _products(name: str) -> None:
    op.create_table(
        name,
        _name(200, "name"),
        _name(200, "owner"),
        sa.Column("body", sa.Text(), nullable=False),
        _moment("created_at"),
        _moment("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_drg_products"),
    )


def _part(*extra: sa.Column) -> Callable[[str], None]:
    """A product's source, pipeline or serving: (product, name), deleted with its product."""

    def build(name: str) -> None:
        op.create_table(
            name,
            _name(200, "product"),
            _name(200, "name"),
            *extra,
            sa.Column("body", sa.Text(), nullable=False),
            _moment("created_at"),
            sa.PrimaryKeyConstraint("product", "name", name=f"pk_{name}"),
            sa.ForeignKeyConstraint(["product"], ["drg_products.name"], name=f"fk_{name}_product",
                                    ondelete="CASCADE"),
        )

    return build


def _grants(name: str) -> None:
    op.create_table(
        name,
        _name(200, "product"),
        _name(200, "serving"),
        _name(200, "grantee"),
        _name(200, "granted_by"),
        _moment("created_at"),
        sa.PrimaryKeyConstraint("product", "serving", "grantee", name="pk_drg_product_grants"),
        sa.ForeignKeyConstraint(["product", "serving"], ["drg_product_servings.product", "drg_product_servings.name"],
                                name="fk_drg_product_grants_product_serving", ondelete="CASCADE"),
    )


def _team_keys(name: str) -> None:
    op.create_table(
        name,
        _name(32, "key_id"),
        _name(200, "team"),
        _name(64, "digest"),
        sa.Column("active", sa.Boolean(), nullable=False),
        _moment("created_at"),
        _moment("deactivated_at", nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_drg_team_keys"),
    )
    op.create_index("ix_drg_team_keys_team", name, ["team"])


def _resource_owners(name: str) -> None:
    op.create_table(
        name,
        _name(200, "resource"),
        _name(200, "product", nullable=True),
        _name(200, "team", nullable=True),
        _name(64, "generation"),
        _moment("created_at"),
        sa.PrimaryKeyConstraint("resource", name="pk_drg_resource_owners"),
    )


def _audit_log(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _moment("at"),
        _name(200, "actor"),
        _name(40, "action"),
        _name(40, "entity"),
        _name(200, "product", nullable=True),
        _name(200, "team", nullable=True),
        _name(400, "target", nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drg_audit_log"),
    )
    op.create_index("ix_drg_audit_log_product", name, ["product"])
    op.create_index("ix_drg_audit_log_team", name, ["team"])


def _catalog_version(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drg_catalog_version"),
    )


def _blind_keys(name: str) -> None:
    op.create_table(
        name,
        _name(255, "table_name"),
        _name(255, "field"),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "field", name="pk_drg_blind_keys"),
    )


def _md_entities(name: str) -> None:
    op.create_table(
        name,
        _name(1000, "urn"),
        _name(200, "entity_type"),
        sa.Column("removed", sa.Boolean(), nullable=False),
        _moment("created_at"),
        sa.PrimaryKeyConstraint("urn", name="pk_drg_md_entities"),
    )


def _aspect_columns() -> list[sa.Column]:
    return [
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        _name(1000, "actor"),
        _name(200, "run_id"),
        sa.Column("system", sa.Boolean(), nullable=False),
    ]


def _md_aspects(name: str) -> None:
    op.create_table(
        name,
        _name(1000, "urn"),
        _name(200, "aspect"),
        sa.Column("version", sa.Integer(), nullable=False),
        *_aspect_columns(),
        sa.PrimaryKeyConstraint("urn", "aspect", name="pk_drg_md_aspects"),
    )


def _md_aspect_versions(name: str) -> None:
    op.create_table(
        name,
        _name(1000, "urn"),
        _name(200, "aspect"),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        *_aspect_columns(),
        sa.PrimaryKeyConstraint("urn", "aspect", "version", name="pk_drg_md_aspect_versions"),
    )


def _md_relationships(name: str) -> None:
    op.create_table(
        name,
        _name(1000, "source"),
        _name(200, "aspect"),
        _name(200, "relationship_type"),
        _name(1000, "destination"),
        sa.PrimaryKeyConstraint("source", "aspect", "relationship_type", "destination",
                                name="pk_drg_md_relationships"),
    )
    op.create_index("ix_drg_md_relationships_destination", name, ["destination", "relationship_type"])


def _datasets(name: str) -> None:
    op.create_table(
        name,
        _name(36, "id"),
        _name(200, "account"),
        _name(200, "group_name"),
        _name(200, "name"),
        _name(63, "repository"),
        _name(200, "org"),
        sa.Column("derivative", sa.Boolean(), nullable=False),
        sa.Column("finalized", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        _moment("created_at"),
        _moment("modified_at"),
        sa.PrimaryKeyConstraint("id", name="pk_drg_datasets"),
    )
    op.create_index("ix_drg_datasets_account_group", name, ["account", "group_name", "created_at"])
    op.create_index("ix_drg_datasets_name", name, ["name"])


def _dataset_logs(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _name(36, "dataset"),
        _moment("at"),
        _name(200, "actor"),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drg_dataset_logs"),
    )
    op.create_index("ix_drg_dataset_logs_dataset", name, ["dataset", "id"])


def _lc_versions(name: str) -> None:
    op.create_table(
        name,
        _name(200, "product"),
        _name(200, "version"),
        sa.Column("descriptor", Json, nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        _moment("created_at"),
        _moment("updated_at"),
        sa.PrimaryKeyConstraint("product", "version", name="pk_drg_lc_versions"),
    )


def _lc_activities(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        _name(200, "product"),
        _name(200, "version"),
        _name(200, "stage"),
        _name(20, "status"),
        sa.Column("results", Json, nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        _moment("created_at"),
        _moment("started_at", nullable=True),
        _moment("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drg_lc_activities"),
    )
    op.create_index("ix_drg_lc_activities_product", name, ["product", "version"])


def _lc_tasks(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("activity_id", Id, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _name(200, "executor"),
        sa.Column("template", Json, nullable=True),
        sa.Column("configurations", Json, nullable=True),
        _name(20, "status"),
        sa.Column("results", Json, nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        _moment("created_at"),
        _moment("started_at", nullable=True),
        _moment("finished_at", nullable=True),
        _moment("claimed_at", nullable=True),
        _moment("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drg_lc_tasks"),
        sa.ForeignKeyConstraint(["activity_id"], ["drg_lc_activities.id"], name="fk_drg_lc_tasks_activity_id",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_drg_lc_tasks_activity_id", name, ["activity_id"])


def _lc_variables(name: str) -> None:
    op.create_table(
        name,
        sa.Column("activity_id", Id, nullable=False),
        _name(200, "name"),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("task_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("activity_id", "name", name="pk_drg_lc_variables"),
        sa.ForeignKeyConstraint(["activity_id"], ["drg_lc_activities.id"], name="fk_drg_lc_variables_activity_id",
                                ondelete="CASCADE"),
    )


def _lc_stages(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        _name(200, "product"),
        _name(200, "version"),
        _name(200, "stage"),
        sa.Column("activity_id", Id, nullable=False),
        sa.Column("results", Json, nullable=True),
        _moment("started_at"),
        _moment("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drg_lc_stages"),
    )
    op.create_index("ix_drg_lc_stages_product", name, ["product", "version"])


# In dependency order: a table comes after the ones its foreign keys reference.
TABLES = (
    ("drg_generations", _generations),
    ("drg_tableschemas", _tableschemas),
    ("drg_products", _products),
    ("drg_product_sources", _part()),
    ("drg_product_pipelines", _part()),
    ("drg_product_servings", _part(_name(20, "serving_type"))),
    ("drg_product_grants", _grants),
    ("drg_team_keys", _team_keys),
    ("drg_resource_owners", _resource_owners),
    ("drg_audit_log", _audit_log),
    ("drg_catalog_version", _catalog_version),
    ("drg_blind_keys", _blind_keys),
    ("drg_md_entities", _md_entities),
    ("drg_md_aspects", _md_aspects),
    ("drg_md_aspect_versions", _md_aspect_versions),
    ("drg_md_relationships", _md_relationships),
    ("drg_datasets", _datasets),
    ("drg_dataset_logs", _dataset_logs),
    ("drg_lc_versions", _lc_versions),
    ("drg_lc_activities", _lc_activities),
    ("drg_lc_tasks", _lc_tasks),
    ("drg_lc_variables", _lc_variables),
    ("drg_lc_stages", _lc_stages),
)
