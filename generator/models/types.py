"""Table Schema types → SQL types, in one function ending in an error.

Two types need more than a plain SQLAlchemy type:
- `number` keeps its value: NUMERIC (exact) on PostgreSQL; on SQLite TEXT holding the decimal as sent,
  because SQLite has no exact numeric storage (REAL keeps 15 digits; a NUMERIC column converts text to REAL).
  It still compares and sorts numerically there: `columns.FieldColumn` casts both sides to REAL. Tables
  created before this change hold REAL; they keep working (read back through the shortest repr).
- `datetime` keeps its offset: stored as canonical ISO 8601 text (microseconds and `±HH:MM`), since both
  PostgreSQL's timestamptz and SQLite drop the original offset. Text in this fixed format sorts by instant
  within one offset; comparisons across offsets cast (see the query-language issue)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Dialect, Integer, LargeBinary, Numeric, String, Text, Time
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from generator.payload.specs import JSON_TYPES, FieldSpec


class ExactNumber(TypeDecorator[Decimal]):
    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value if isinstance(value, Decimal) else Decimal(str(value))
        return str(value) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """None on PostgreSQL: psycopg already returns `Decimal`, and a processor costs a call per value."""
        return None if dialect.name == "postgresql" else super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return Decimal(int(value))  # a legacy REAL column
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


class IsoDateTime(TypeDecorator[datetime]):
    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else value.isoformat(timespec="microseconds")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        """One call per value instead of TypeDecorator's two (a page of 100 rows reads 100 of them)."""
        parse = datetime.fromisoformat
        return lambda value: None if value is None else parse(value)


def json_type() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


def integer_type() -> TypeEngine[int]:
    """BIGINT everywhere but SQLite, whose auto-increment needs exactly INTEGER PRIMARY KEY."""
    return BigInteger().with_variant(Integer(), "sqlite")


def sql_type(field: FieldSpec) -> TypeEngine[Any]:
    """The column type for a Table Schema field (a protected one holds ciphertext: `models/protected.py`)."""
    if field.protected:
        return LargeBinary()
    if field.type in JSON_TYPES:
        return json_type()
    match field.type:
        case "string" if field.is_uuid:
            return String(36)
        case "string" | "duration":
            return Text()
        case "integer":
            return integer_type()
        case "number":
            return ExactNumber()
        case "boolean":
            return Boolean()
        case "date":
            return Date()
        case "time":
            return Time()
        case "datetime":
            return IsoDateTime()
        case "year":
            return Integer()
        case "yearmonth":
            return String(7)
    raise ValueError(f"{field.type} has no matching SQL type")
