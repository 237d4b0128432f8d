"""Every live `MetaData` that holds platform tables: what the newest revision must produce.

`tests/test_migrations.py` compares a freshly migrated database with these (alembic's `compare_metadata`),
so a table changed without a revision fails there, naming the difference. Importing this module imports
each control-plane package's table module; start-up never needs it."""

from __future__ import annotations

from sqlalchemy import MetaData


def platform_metadata() -> list[MetaData]:
    from generator.datasets import tables as datasets
    from generator.lifecycle import tables as lifecycle
    from generator.metadata import tables as graph
    from generator.models import blind_keys
    from generator.models.tables import platform_metadata as core
    from generator.products import tables as products  # registers the data products' tables on `core`

    assert products.products.metadata is core
    return [core, blind_keys.metadata, graph.metadata, datasets.metadata, lifecycle.metadata]
