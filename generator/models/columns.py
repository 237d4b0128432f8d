"""One object per field that owns how the field is stored, compared and sorted (a per-field column mapping).

Tables, the query language and handlers go through a `FieldColumn` instead of `table.c[name]`, so a field
whose storage is not a plain column (datetimes kept as offset-preserving text, later encrypted fields with a
blind index) changes in one place:
- `datetime` is stored as canonical ISO text with its offset; it compares and sorts by instant through
  UTC text with microseconds on SQLite and a `timestamptz` cast on PostgreSQL.
- `number` is exact decimal text on SQLite; it compares and sorts as REAL there (both sides cast).
- JSON-like fields compare only through a path, as text (`data->>city`).
- `like` is case-sensitive on both databases (SQLite's LIKE is not, so SQLite uses GLOB there)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, case, cast, false, func, literal, not_, null, or_, true
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.types import Float, String

from generator.crypto.cipher import FieldCipher
from generator.payload.specs import JSON_TYPES, FieldSpec, ResourceSpec


@dataclass(frozen=True)
class FieldColumn:
    spec: FieldSpec
    column: Any  # the table's Column
    dialect: str

    @property
    def name(self) -> str:
        return self.spec.name

    def sortable(self) -> ColumnElement[Any]:
        """The expression that orders and compares this field's values as its type says."""
        if self.spec.type == "datetime":
            return self._instant(self.column)
        if self.spec.type == "number" and self.dialect == "sqlite":
            return cast(self.column, Float())  # exact decimal text, compared as a number
        return self.column

    def _instant(self, expression: Any) -> ColumnElement[Any]:
        """The instant as something that compares exactly. SQLite: UTC text to the second from `strftime`
        (which applies the offset) plus the stored text's fixed-width `.ffffff` (`IsoDateTime` always writes
        microseconds); `julianday()` is a double of days, about 40 µs coarse, so it made rows a microsecond
        apart equal. PostgreSQL: a `timestamptz`, microsecond exact."""
        if self.dialect == "sqlite":
            return func.strftime("%Y-%m-%d %H:%M:%S", expression).concat(func.substr(expression, 20, 7))
        return cast(expression, TIMESTAMP(timezone=True))

    def value(self, value: Any) -> Any:
        """A bound value in the form `sortable()` compares against."""
        if self.spec.type == "datetime" and value is not None:
            return self._instant(literal(value.isoformat(timespec="microseconds"), String()))
        if self.spec.type == "number" and self.dialect == "sqlite" and value is not None:
            return cast(literal(str(value), String()), Float())
        return literal(value, self.column.type) if value is not None else null()

    def json_text(self, path: tuple[str, ...]) -> ColumnElement[Any]:
        """A JSON member as text, as PostgreSQL's `->>` gives it. SQLite's `json_extract` turns JSON true and
        false into 1 and 0, so there the member's JSON type picks `'true'`/`'false'` first."""
        text = self.column[path].as_string() if len(path) > 1 else self.column[path[0]].as_string()
        if self.dialect != "sqlite":
            return text
        where = "$" + "".join('."' + key.replace('"', '""') + '"' for key in path)
        kind = func.json_type(self.column, literal(where, String()))
        return case((kind == "true", literal("true", String())), (kind == "false", literal("false", String())),
                    else_=text)

    def compare(self, op: str, value: Any, path: tuple[str, ...] = ()) -> ColumnElement[bool]:
        """`field op value` with SQL NULL semantics; `path` compares a JSON field's member as text."""
        target: Any = self.json_text(path) if path else self.sortable()
        bind = _text_literal if path else self.value
        match op:
            case "eq":
                return target == bind(value)
            case "neq":
                return target != bind(value)
            case "gt":
                return target > bind(value)
            case "gte":
                return target >= bind(value)
            case "lt":
                return target < bind(value)
            case "lte":
                return target <= bind(value)
            case "in":
                if not value:
                    return not_(true())
                return or_(*(target == bind(item) for item in value)) if self.spec.type == "datetime" \
                    else target.in_([bind(item) for item in value])
            case "is":  # constants, not binds: PostgreSQL has no `IS $1`
                return target.is_(None) if value is None else target.is_(true() if value else false())
            case "like":
                return self._like(target, value)
            case "ilike":
                return target.ilike(literal(value, String()))
        raise ValueError(f"unknown operator {op!r}")

    def _like(self, target: Any, pattern: str) -> ColumnElement[bool]:
        if self.dialect != "sqlite":
            return target.like(literal(pattern, String()))
        glob = "".join("[" + c + "]" if c in "*?[]" else "*" if c == "%" else "?" if c == "_" else c for c in pattern)
        return target.bool_op("GLOB")(literal(glob, String()))  # a boolean, so `not.like` can negate it


def _text_literal(value: Any) -> Any:
    return literal(value, String())


@dataclass(frozen=True)
class ProtectedColumn(FieldColumn):
    """A protected field's column mapping: equality through the blind index, null tests on the value."""

    cipher: FieldCipher | None = None
    blind: Any = None  # the blind-index Column, or None when the field is not searchable

    def compare(self, op: str, value: Any, path: tuple[str, ...] = ()) -> ColumnElement[bool]:
        if op == "is" and value is None:
            return self.column.is_(None)
        if self.blind is None or self.cipher is None or path or op not in ("eq", "in"):
            raise ValueError(f"{self.name} is protected: only equality on a searchable field, or is.null")
        values = value if op == "in" else (value,)
        terms = [term for item in values for term in self.cipher.search_terms(item)]
        if len(terms) == 1:  # the usual case (no rotation running): a plain index probe, no expanding IN
            return self.blind == literal(terms[0], self.blind.type)
        return self.blind.in_(terms) if terms else not_(true())

    def sortable(self) -> ColumnElement[Any]:
        raise ValueError(f"{self.name} is protected: encrypted values do not sort")


BLIND_SUFFIX = "__blind"
MAX_IDENTIFIER = 63  # PostgreSQL's limit: a longer name would be cut, and then not found again


def blind_column_name(field: str) -> str:
    """The blind-index column of a searchable field: `<field>__blind`, shortened with a hash when too long."""
    name = field + BLIND_SUFFIX
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(field.encode()).hexdigest()[:10]
    kept = field.encode()[: MAX_IDENTIFIER - len(BLIND_SUFFIX) - 11].decode(errors="ignore")
    return f"{kept}_{digest}{BLIND_SUFFIX}"



def field_columns(resource: ResourceSpec, table: Table, dialect: str,
                  ciphers: Mapping[str, Any] | None = None) -> dict[str, FieldColumn]:
    """Each field's mapping; protected fields (with their `FieldCipher` from `ciphers`) compare through
    their blind index (`models/protected.py`)."""
    found: dict[str, FieldColumn] = {}
    for f in resource.fields:
        if f.protected:
            blind = table.c.get(blind_column_name(f.name)) if f.searchable else None
            found[f.name] = ProtectedColumn(f, table.c[f.name], dialect, (ciphers or {}).get(f.name), blind)
        else:
            found[f.name] = FieldColumn(f, table.c[f.name], dialect)
    return found


def comparable(columns: Mapping[str, FieldColumn]) -> list[FieldColumn]:
    return [c for c in columns.values() if c.spec.type not in JSON_TYPES]
