"""The index of datasets in the platform database (`drg_datasets`): one row per dataset with a copy of its
metadata, written in the request that changes the metadata object in the repository bucket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update

from generator.datasets.tables import datasets
from generator.models.engine import for_writes, reading


@dataclass(frozen=True)
class Row:
    id: str
    account: str
    group: str
    name: str
    repository: str
    org: str
    derivative: bool
    finalized: bool
    metadata: dict[str, Any]


def _row(found: Any) -> Row:
    return Row(found.id, found.account, found.group_name, found.name, found.repository, found.org,
               bool(found.derivative), bool(found.finalized), json.loads(found.metadata))


def add(engine: Engine, row: Row, at: datetime) -> None:
    with for_writes(engine).begin() as connection:
        connection.execute(insert(datasets).values(
            id=row.id, account=row.account, group_name=row.group, name=row.name, repository=row.repository,
            org=row.org, derivative=row.derivative, finalized=row.finalized, metadata=json.dumps(row.metadata),
            created_at=at, modified_at=at))


def find(engine: Engine, account: str, group: str, dataset_id: str) -> Row | None:
    query = select(datasets).where(datasets.c.id == dataset_id, datasets.c.account == account,
                                   datasets.c.group_name == group)
    found = reading(engine, lambda c: c.execute(query).first())
    return None if found is None else _row(found)


def save(engine: Engine, row: Row, at: datetime) -> None:
    with for_writes(engine).begin() as connection:
        connection.execute(update(datasets).where(datasets.c.id == row.id).values(
            derivative=row.derivative, finalized=row.finalized, metadata=json.dumps(row.metadata), modified_at=at))


def finalize(engine: Engine, row: Row, at: datetime) -> bool:
    """Mark the dataset finalized unless it already is: False when another request got there first."""
    with for_writes(engine).begin() as connection:
        done = connection.execute(update(datasets).where(datasets.c.id == row.id, datasets.c.finalized.is_(False))
                                  .values(derivative=False, finalized=True, metadata=json.dumps(row.metadata),
                                          modified_at=at))
        return bool(done.rowcount)


def unfinalize(engine: Engine, before: Row, at: datetime) -> None:
    """Undo `finalize` when the metadata object could not follow."""
    with for_writes(engine).begin() as connection:
        connection.execute(update(datasets).where(datasets.c.id == before.id).values(
            derivative=before.derivative, finalized=False, metadata=json.dumps(before.metadata), modified_at=at))


def remove(engine: Engine, dataset_id: str) -> None:
    with for_writes(engine).begin() as connection:
        connection.execute(delete(datasets).where(datasets.c.id == dataset_id))


def page(engine: Engine, account: str, group: str, offset: int, limit: int) -> tuple[list[Row], int]:
    where = (datasets.c.account == account, datasets.c.group_name == group)
    rows = select(datasets).where(*where).order_by(datasets.c.created_at, datasets.c.id).offset(offset).limit(limit)
    total = select(func.count()).select_from(datasets).where(*where)
    return reading(engine, lambda c: ([_row(r) for r in c.execute(rows)], c.execute(total).scalar_one()))


def named(engine: Engine, name_or_id: str) -> list[Row]:
    """Datasets whose id or name is `name_or_id` (data-product sources name them either way)."""
    query = select(datasets).where(or_(datasets.c.id == name_or_id, datasets.c.name == name_or_id))
    return reading(engine, lambda c: [_row(r) for r in c.execute(query)])
