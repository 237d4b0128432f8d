"""Validation rules a generation narrows over rows that break them: a schema change with no DDL.

`enum`, `minLength`/`maxLength`, `pattern`, `format` and `minimum`/`maximum` are checked on requests, not by
the database, so alembic's diff never sees them. Narrowed under stored rows that break them, they would be
applied silently, and afterwards a client's read-modify-write of such a row (a PUT of the value it read) is a
400 for a value it did not change. So each field that the previous generation and this one both declare, on
a table both declare, is compared rule by rule; a narrowed rule's violating rows are counted, and a field
with some is a destructive `tighten_constraint` (applied only with `allow_destructive`); one every row
satisfies is listed as an additive change.

Counting: on PostgreSQL, enum, lengths and numeric bounds are one `count(*)`; patterns and formats, and
everything on SQLite (where exact numbers are stored as text and would compare as text), stream the column's
values (bounded memory) through the very matchers request validation uses: RE2 for patterns, anchored as the
served document anchors them, and jsonschema's Draft 4 format checker. A count is thus exactly the rows a
PUT would refuse. Rules that cannot be checked here are destructive when the table has rows: those of
protected fields (only ciphertext is stored), and those of other types (uuid, date and time bounds, enums of
booleans, dates ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from jsonschema import Draft4Validator
from sqlalchemy import Connection, func, or_, select
from sqlalchemy import column as column_of
from sqlalchemy import table as table_of

from generator.models.compare import existing_tables
from generator.models.evolution import Change
from generator.models.types import sql_type
from generator.patterns import searcher
from generator.payload.specs import FieldSpec, Generation

FORMATS = Draft4Validator.FORMAT_CHECKER  # the checker request validation uses (api/bodies.py, fastcheck.py)
STREAMED = 1000  # values fetched at a time when they are checked in Python
IN_SQL = frozenset({"enum", "minLength", "maxLength", "minimum", "maximum"})  # PostgreSQL counts these itself


def rule_changes(connection: Connection, previous: Generation, generation: Generation) -> list[Change]:
    """A `tighten_constraint` for each field whose request-validation rules `generation` narrows compared
    with `previous` (destructive when stored rows break them, or when they cannot be checked over rows)."""
    before = {r.name: {f.name: f for f in r.fields} for r in previous.resources}
    narrowed = [(resource.name, before[resource.name][f.name], f, rules)
                for resource in generation.resources if resource.name in before
                for f in resource.fields if f.name in before[resource.name]
                if (rules := narrowed_rules(before[resource.name][f.name], f))]
    if not narrowed:
        return []
    present = existing_tables(connection)
    return [_tightened(connection, table, was, now, rules) for table, was, now, rules in narrowed if table in present]


def narrowed_rules(was: FieldSpec, now: FieldSpec) -> list[str]:
    """The rules (by their Table Schema names) under which `now` may refuse a value `was` accepted. A field
    whose storage changes (its type family, or protection) is evolution's to classify, not this module's."""
    if _family(was) != _family(now) or was.protected != now.protected:
        return []
    found = []
    if now.enum is not None and (was.enum is None or any(v not in now.enum for v in was.enum)):
        found.append("enum")
    if now.type == "string":
        if now.min_length is not None and (was.min_length is None or now.min_length > was.min_length):
            found.append("minLength")
        if now.max_length is not None and (was.max_length is None or now.max_length < was.max_length):
            found.append("maxLength")
        if now.pattern is not None and now.pattern != was.pattern:
            found.append("pattern")
        if now.format != was.format and now.format in FORMATS.checkers:
            found.append("format")
    if now.type in BOUNDED:
        if now.minimum is not None and (was.minimum is None or _above(now.minimum, was.minimum)):
            found.append("minimum")
        if now.maximum is not None and (was.maximum is None or _above(was.maximum, now.maximum)):
            found.append("maximum")
    return found


BOUNDED = frozenset({"integer", "number", "year", "date", "time", "datetime", "yearmonth"})  # minimum/maximum


def _above(a: Any, b: Any) -> bool:
    """a > b, or True (narrowed, to be checked) when the two bounds do not compare."""
    try:
        return bool(a > b)
    except TypeError:
        return True


def _family(f: FieldSpec) -> str:
    """Types whose stored values read alike: an integer field becoming a number keeps its values."""
    if f.type in ("integer", "number", "year"):
        return "number"
    return "uuid" if f.is_uuid else f.type


def _checkable(f: FieldSpec) -> bool:
    return not f.protected and _family(f) in ("number", "string")


def _tightened(connection: Connection, table: str, was: FieldSpec, now: FieldSpec, rules: list[str]) -> Change:
    listed = ", ".join(f"{rule} {_shown(now, rule)}" for rule in rules)
    where = f"table {table!r}: field {now.name!r} is checked more strictly ({listed})"
    before = ", ".join(f"{rule} {_shown(was, rule)}" for rule in rules)
    change = Change("tighten_constraint", table, where, column=now.name, before=before, after=listed)
    if not _checkable(now):
        rows = _count(connection, table_of(table, column_of(now.name)).c[now.name].is_not(None))
        if not rows:
            return replace(change, description=f"{where}; no row holds a value for it")
        why = "only ciphertext is stored" if now.protected else f"rules on {now.type} values are not checked here"
        return replace(change, destructive=True,
                       description=f"{where}: {rows} row(s) hold a value for it that cannot be checked ({why}); "
                                   "one that breaks it would be refused when written back unchanged")
    violating = _violations(connection, table, was, now, rules)
    if not violating:
        return replace(change, description=f"{where}; every stored value satisfies it")
    return replace(change, destructive=True, description=f"{where}: {violating} row(s) hold a value it refuses, "
                                                         "and could not be written back unchanged")


def _shown(f: FieldSpec, rule: str) -> str:
    value = {"enum": f.enum and list(f.enum), "minLength": f.min_length, "maxLength": f.max_length,
             "minimum": f.minimum, "maximum": f.maximum, "pattern": f.pattern, "format": f.format}[rule]
    return "none" if value is None else repr(value)


def _count(connection: Connection, *conditions: Any) -> int:
    """Rows meeting `conditions`, over the (one) table their columns belong to."""
    return int(connection.execute(select(func.count()).where(*conditions)).scalar() or 0)


def _violations(connection: Connection, table: str, was: FieldSpec, now: FieldSpec, rules: list[str]) -> int:
    """Rows whose value breaks one of `rules` of `now`, read as `was` stores them."""
    column = table_of(table, column_of(now.name, sql_type(was))).c[now.name]
    if connection.dialect.name == "postgresql" and set(rules) <= IN_SQL:
        return _count(connection, column.is_not(None), or_(*_conditions(column, now, rules)))
    refuses = _refuses(now, rules)
    query = select(column).where(column.is_not(None)).execution_options(yield_per=STREAMED)
    return sum(1 for (value,) in connection.execute(query) if refuses(value))


def _conditions(column: Any, now: FieldSpec, rules: list[str]) -> list[Any]:
    """SQL conditions a (non-null) value breaking each of `rules` meets. NULL in an enum matches nothing here."""
    allowed = [v for v in now.enum or () if v is not None]
    found: dict[str, Callable[[], Any]] = {
        "enum": lambda: column.not_in(allowed), "minLength": lambda: func.length(column) < now.min_length,
        "maxLength": lambda: func.length(column) > now.max_length, "minimum": lambda: column < now.minimum,
        "maximum": lambda: column > now.maximum,
    }  # fmt: skip
    return [found[rule]() for rule in rules]


def _refuses(now: FieldSpec, rules: list[str]) -> Callable[[Any], bool]:
    """A stored value → whether request validation would refuse it under `rules`."""
    checks: list[Callable[[Any], bool]] = []
    if "enum" in rules:
        allowed = list(now.enum or ())
        checks.append(lambda v: v not in allowed)
    if "minLength" in rules:
        checks.append(lambda v: len(v) < now.min_length)
    if "maxLength" in rules:
        checks.append(lambda v: len(v) > now.max_length)
    if "minimum" in rules:
        checks.append(lambda v: v < now.minimum)
    if "maximum" in rules:
        checks.append(lambda v: v > now.maximum)
    if "pattern" in rules:
        search = searcher(f"^(?:{now.pattern})$").search  # as the served document anchors it (api/openapi.py)
        checks.append(lambda v: not search(v))
    if "format" in rules:
        checks.append(lambda v: not FORMATS.conforms(v, now.format))
    return lambda value: any(check(value) for check in checks)
