"""A `ReadQuery` → SQLAlchemy clauses: the filter tree, the order, and the keyset seek condition.

Everything goes through the per-field `FieldColumn`s, so types compare as they should (datetimes by
instant) and values are always bound. Ordering always ends with the primary key, so every order is total
and a keyset cursor can resume exactly after the last row. NULLs sort as PostgreSQL sorts them by default
(last ascending, first descending) on both databases."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_

from generator.api.query import Condition, Node, Ordering, QueryError
from generator.api.values import from_text
from generator.codec import dumps, loads
from generator.models.columns import FieldColumn


def where(node: Node, columns: Mapping[str, FieldColumn]) -> ColumnElement[bool] | None:
    """The SQL condition of a filter tree; None when it has no conditions."""
    if isinstance(node, Condition):
        clause = columns[node.field].compare(node.op, node.value, node.path)
        return not_(clause) if node.negated else clause
    parts = [c for c in (where(item, columns) for item in node.items) if c is not None]
    if not parts:
        return None
    clause = and_(*parts) if node.conjunction == "and" else or_(*parts)
    return not_(clause) if node.negated else clause


@dataclass(frozen=True)
class SortKey:
    column: FieldColumn
    descending: bool
    nulls_last: bool

    def clause(self) -> Any:
        expression = self.column.sortable()
        ordered = expression.desc() if self.descending else expression.asc()
        return ordered.nulls_last() if self.nulls_last else ordered.nulls_first()


def sort_keys(order: Sequence[Ordering], columns: Mapping[str, FieldColumn],
              primary_key: Sequence[str]) -> list[SortKey]:
    """The requested order, then the primary key to break ties (each field once)."""
    keys: list[SortKey] = []
    seen: set[str] = set()
    for item in [*order, *(Ordering(name) for name in primary_key)]:
        if item.field in seen:
            continue
        seen.add(item.field)
        nulls_last = item.nulls == "last" if item.nulls else not item.descending
        keys.append(SortKey(columns[item.field], item.descending, nulls_last))
    return keys


def seek(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after the row whose sort-key values are `values`, in the order `keys` define."""
    alternatives = []
    for index, key in enumerate(keys):
        same = [_equal(k, v) for k, v in zip(keys[:index], values[:index], strict=True)]
        alternatives.append(and_(*same, _after(key, values[index])))
    return or_(*alternatives)


def _equal(key: SortKey, value: Any) -> ColumnElement[bool]:
    expression = key.column.sortable()
    return expression.is_(None) if value is None else expression == key.column.value(value)


def _after(key: SortKey, value: Any) -> ColumnElement[bool]:
    expression = key.column.sortable()
    if value is None:
        return false() if key.nulls_last else expression.is_not(None)
    bound = key.column.value(value)
    beyond = expression < bound if key.descending else expression > bound
    return or_(beyond, expression.is_(None)) if key.nulls_last else beyond


# -- cursors: the last row's sort-key values, as opaque URL-safe text ------------------------------------


def encode_cursor(keys: Sequence[SortKey], row: Mapping[str, Any]) -> str:
    values = [None if row[k.column.name] is None else _text(row[k.column.name]) for k in keys]
    payload = dumps({"k": [k.column.name for k in keys], "v": values})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """The values a cursor carries, converted by field; a cursor from another order is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = loads(base64.urlsafe_b64decode(padded.encode()))
        names, texts = data["k"], data["v"]
    except (ValueError, TypeError, KeyError) as exc:
        raise QueryError("not a cursor this service issued") from exc
    if names != [k.column.name for k in keys] or len(texts) != len(keys):
        raise QueryError("this cursor belongs to another order; follow the links of the same query")
    try:
        return [None if text is None else from_text(k.column.spec, text) for k, text in zip(keys, texts, strict=True)]
    except (ValueError, ArithmeticError) as exc:
        raise QueryError(f"the cursor holds an invalid value: {exc}") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
