"""Relationships between generated tables, for embedding and the many-to-many routes.

From a resource's point of view:
- `one`: its foreign key names a row of another table (N:1): embedded as an object, or null.
- `many`: another table's foreign key names its rows (1:N): embedded as a list.
- `many` through an association table (`data.relationships.manyToMany`): embedded as a list.

A relationship is known by the related table's name. When several share a name (a self-reference, two
foreign keys to one table, a foreign key beside a many-to-many pair), the ambiguous ones are named
`<table>!<field>` after their first key field, as PostgREST's hints do (see `_named`). Loading a page's
related rows is one query per embed, whatever the page size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, MetaData, Select, Table, and_, select, tuple_

from generator.models.tables import association_columns
from generator.payload.specs import Generation


@dataclass(frozen=True)
class Relation:
    name: str
    target: str
    cardinality: Literal["one", "many"]
    local: tuple[str, ...]  # this table's columns that identify the link
    remote: tuple[str, ...]  # the target's columns they equal (or the association's, when `through`)
    through: str | None = None  # association table of a many-to-many pair
    through_target: tuple[tuple[str, str], ...] = ()  # (association column, target key column)


def relations_of(generation: Generation, name: str) -> dict[str, Relation]:
    found: list[Relation] = []
    resource = generation.resource(name)
    for fk in resource.foreign_keys:
        found.append(Relation(fk.resource, fk.resource, "one", fk.fields, fk.reference_fields))
    for other in generation.resources:
        for fk in other.foreign_keys:
            if fk.resource == name:
                found.append(Relation(other.name, other.name, "many", fk.reference_fields, fk.fields))
    for pair in generation.many_to_many:
        if name not in (pair.left, pair.right):
            continue
        sides = list(association_columns(pair, generation).values())
        mine, theirs = (sides[0], sides[1]) if pair.left == name else (sides[1], sides[0])
        target = pair.right if pair.left == name else pair.left
        found.append(Relation(target, target, "many", tuple(k for _, k in mine), tuple(c for c, _ in mine),
                              pair.table_name, tuple(theirs)))
    return _named(found)


def _named(found: list[Relation]) -> dict[str, Relation]:
    """Each relation under a name of its own. Where several share the related table's name, N:1 sides are
    hinted `<table>!<key field>` (the field of this table); 1:N sides too when more than one 1:N or M:N shares
    the name (`<table>!<its key field>`), except the many-to-many pair, which keeps the plain name its
    `/<parent>/{id}/<child>` routes are found by. A self-reference keeps its 1:N side plain: `employee` lists
    the reports, `employee!manager_id` is the manager."""
    by_name: dict[str, list[Relation]] = defaultdict(list)
    for relation in found:
        by_name[relation.name].append(relation)
    named: dict[str, Relation] = {}
    for name, group in by_name.items():
        many = [r for r in group if r.cardinality == "many"]
        for relation in group:
            if len(group) == 1 or (relation.cardinality == "many" and (len(many) == 1 or relation.through)):
                named[name] = relation
                continue
            field = relation.local[0] if relation.cardinality == "one" else relation.remote[0]
            hinted = f"{name}!{field}"
            named[hinted] = Relation(hinted, relation.target, relation.cardinality, relation.local,
                                     relation.remote, relation.through, relation.through_target)
    return named


def related_rows_statement(relation: Relation, metadata: MetaData, keys: Sequence[tuple[Any, ...]],
                           row_filter: ColumnElement[bool] | None = None,
                           columns: Sequence[Any] | None = None) -> Select[Any]:
    """One query for every row related to the page's `keys` (values of `relation.local`): the target's
    columns, preceded for a many-to-many pair by the association columns that say which page row it is for."""
    target: Table = metadata.tables[relation.target]
    selected = list(columns) if columns is not None else list(target.c)  # the target's fields
    if relation.through is None:
        statement = select(*selected).where(tuple_(*(target.c[c] for c in relation.remote)).in_(keys))
    else:
        link = metadata.tables[relation.through]
        joined = target.join(link, and_(*(link.c[a] == target.c[t] for a, t in relation.through_target)))
        statement = (select(*(link.c[c] for c in relation.remote), *selected).select_from(joined)
                     .where(tuple_(*(link.c[c] for c in relation.remote)).in_(keys)))
    if row_filter is not None:
        statement = statement.where(row_filter)
    return statement.order_by(*target.primary_key.columns)


def group_related(relation: Relation, rows: Sequence[Any], names: Sequence[str],
                  open_rows: Callable[[list[dict[str, Any]]], object] | None = None
                  ) -> dict[tuple[Any, ...], Any]:
    """Related rows by the page key they belong to: a list (`many`) or one row (`one`); `open_rows` decrypts
    the target's protected fields, column by column over every related row at once."""
    grouped: dict[tuple[Any, ...], Any] = defaultdict(list)
    records: list[dict[str, Any]] = []
    width = len(relation.remote)
    for row in rows:
        if relation.through is None:
            record = dict(zip(names, row, strict=True))
            key = tuple(record[c] for c in relation.remote)
        else:
            key, record = tuple(row[:width]), dict(zip(names, row[width:], strict=True))
        grouped[key].append(record)
        records.append(record)
    if open_rows is not None:
        open_rows(records)  # in place: the grouped lists hold the same dicts
    if relation.cardinality == "one":
        return {key: items[0] for key, items in grouped.items()}
    return grouped


def embed_into(rows: list[dict[str, Any]], relation: Relation, name: str,
               grouped: Mapping[tuple[Any, ...], Any]) -> None:
    empty: Any = None if relation.cardinality == "one" else []
    for row in rows:
        key = tuple(row[c] for c in relation.local)
        row[name] = grouped.get(key, empty) if None not in key else empty
