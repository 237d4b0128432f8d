"""Schema evolution: what a generation would change in the live database, as structured operations.

alembic's `compare_metadata` diffs the payload's tables (the desired state) against the database, filtered
to the tables the payload declares and that already exist: `drg_*` tables and tables of earlier generations
the payload no longer declares are never compared, so never dropped. Tables that do not exist yet become
`add_table` operations (created whole by `ddl`). Each diff becomes a `Change` that says what it is, whether
it can lose data (`destructive`), and whether the data in the table forbids it outright (`blocked`, checked
with a query: duplicates under a new unique constraint, rows without a value for a new required column ...).
The checks read the database as it is (`Live`): a constraint on a column the generation adds holds NULLs
only, and a table the generation creates has no rows, so neither is queried. Validation rules the payload
narrows (no DDL) are `rules.py`'s.

Classification (the README's table says the same):
- additive: new table or M:N pair, new nullable column, new index, a wider type (INTEGER → BIGINT or
  NUMERIC, VARCHAR(n) → longer or TEXT), NOT NULL → nullable, a new unique or foreign key constraint the
  rows satisfy, dropped indexes and constraints (no value is lost; the database just checks less), comments.
- destructive: dropped column (a rename is a drop and an add, and says so), any other type change,
  nullable → NOT NULL, a new NOT NULL column (payloads declare no defaults).
- blocked (refused even with `allow_destructive`): a constraint the rows violate, a new NOT NULL column on a
  table with rows, a field becoming protected or plain (its stored values would need re-encrypting or
  decrypting), a protected field becoming searchable on a table with rows (their blind index would be
  empty), and a changed primary key.

`apply` runs the changes of each table in alembic's batch mode: plain ALTERs on PostgreSQL; on SQLite, which
cannot ALTER a column's type or constraints, the table is recreated and its rows copied, inside the
caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import (
    Column,
    Connection,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    MetaData,
    Table,
    UniqueConstraint,
    and_,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import column as column_of
from sqlalchemy import table as table_of
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.types import TypeEngine

from generator.models.columns import BLIND_SUFFIX, blind_column_name
from generator.models.compare import COMPATIBLE, SchemaConflict, compiled, existing_tables, shown
from generator.models.types import ExactNumber
from generator.payload.specs import Generation


@dataclass(frozen=True)
class Change:
    """One operation of a plan. `before`/`after` are SQL types, nullability or names, as fits the kind."""

    kind: str
    table: str
    description: str
    destructive: bool = False
    column: str | None = None
    before: str | None = None
    after: str | None = None
    blocked: str | None = None  # why it cannot run even with allow_destructive
    diff: Any = field(default=None, compare=False, repr=False)  # alembic's diff, run by `apply`

    def as_json(self) -> dict[str, Any]:
        body = {"kind": self.kind, "table": self.table, "column": self.column, "from": self.before,
                "to": self.after, "destructive": self.destructive, "additive": not self.destructive,
                "description": self.description}
        if self.blocked:
            body["blocked"] = self.blocked
        return body

    @property
    def sentence(self) -> str:
        """What a 409 lists: the change, and why the data forbids it if it does."""
        return f"{self.description}: {self.blocked}" if self.blocked else self.description

    @property
    def alters_table(self) -> bool:
        """True when it changes a table that exists (DDL beyond CREATE TABLE)."""
        return self.diff is not None

    @property
    def recreates_on_sqlite(self) -> bool:
        """SQLite can only ADD a plain column and create or drop an index in place: anything else copies the
        table (batch mode)."""
        if self.diff is None:
            return False
        kind = self.diff[0]
        return not (kind in ("add_index", "remove_index", "modify_comment", "add_table_comment",
                             "remove_table_comment") or (kind == "add_column" and self.diff[3].nullable))


class EvolutionRefused(SchemaConflict):
    """Changes that may not run: destructive ones without `allow_destructive`, or ones the data forbids.
    `differences` lists their sentences; `planned` is the whole plan, for the 409 body."""

    def __init__(self, refused: list[Change], planned: list[Change]) -> None:
        super().__init__([c.sentence for c in refused])
        self.refused, self.planned = refused, planned

    @property
    def blocked(self) -> bool:
        """True when `allow_destructive` would not help."""
        return any(c.blocked for c in self.refused)


def refused(changes: list[Change], allow_destructive: bool) -> list[Change]:
    return [c for c in changes if c.blocked or (c.destructive and not allow_destructive)]


def plan(connection: Connection, metadata: MetaData, matching: frozenset[str] = frozenset()) -> list[Change]:
    """Every change that would bring the database's copy of `metadata`'s tables to what they declare.

    `matching` names existing tables known to match already (declared alike by the generation being
    served, whose tables were applied): they are not reflected, which is most of the cost of
    regenerating 100 tables to add one column."""
    present = existing_tables(connection)
    changes = [_new_table(t) for t in metadata.sorted_tables if t.name not in present]
    compared = {t.name for t in metadata.sorted_tables if t.name in present and t.name not in matching}
    if not compared:
        return changes
    context = MigrationContext.configure(connection, opts={
        "include_object": lambda _o, name, type_, _r, _c: type_ != "table" or name in compared,
        "include_name": lambda name, type_, _p: type_ != "table" or name in compared,
        "compare_type": _types_differ,
        "compare_server_default": False,
    })
    found = compare_metadata(context, metadata)
    diffs = [d for entry in found for d in (entry if isinstance(entry, list) else [entry])]
    live = Live(connection, present)
    live.read(compared)
    changes += [_classified(live, metadata, d) for d in diffs]
    changes += _primary_key_changes(connection, [metadata.tables[n] for n in sorted(compared)])
    return _noting_renames(changes)


def fingerprint(table: Table) -> tuple[Any, ...]:
    """What `plan` compares of a table, as a value: two tables with one fingerprint need no change between
    them. Types by their repr (variants included), which two builds of one spec repeat exactly."""
    columns = tuple((c.name, repr(c.type), c.nullable, bool(c.unique), c.primary_key, c.comment,
                     tuple(sorted(fk.target_fullname for fk in c.foreign_keys))) for c in table.columns)
    indexes = tuple(sorted((i.name or "", tuple(c.name for c in i.columns)) for i in table.indexes))
    keys = tuple(sorted((fk.name or "", fk.ondelete or "") for fk in table.foreign_key_constraints))
    return table.name, table.comment, columns, indexes, keys, tuple(sorted(table.kwargs.items()))


def unchanged(previous: MetaData, metadata: MetaData) -> frozenset[str]:
    """Tables `metadata` declares exactly as `previous` does."""
    return frozenset(t.name for t in metadata.sorted_tables
                     if t.name in previous.tables and fingerprint(previous.tables[t.name]) == fingerprint(t))


def _types_differ(_context: Any, _reflected: Any, _desired: Any, have: TypeEngine[Any], want: TypeEngine[Any]) -> bool:
    """Types compared as the SQL each compiles to here (what the database holds), as `compare` does."""
    dialect = _context.dialect
    pair = (compiled(dialect, want), compiled(dialect, have))
    return pair[0] != pair[1] and pair not in COMPATIBLE


def _new_table(table: Table) -> Change:
    if all(c.primary_key and c.foreign_keys for c in table.columns):
        what = f"new many-to-many association table {table.name!r}"
    else:
        what = f"new table {table.name!r}"
    return Change("add_table", table.name, what, after=", ".join(c.name for c in table.columns))


# -- one alembic diff → one Change ----------------------------------------------------------------------


@dataclass
class Live:
    """The database as it is before the generation: its tables, and each one's columns (read once). The data
    checks consult it so that they never query a column or a table the generation has yet to create: alembic
    reports a new column's unique constraint or foreign key as a change of its own, and a foreign key may
    refer to a table the same payload creates."""

    connection: Connection
    tables: set[str]
    _columns: dict[str, set[str]] = field(default_factory=dict)

    def read(self, names: set[str]) -> None:
        """Read the columns of `names` (existing tables) in one go."""
        found = inspect(self.connection).get_multi_columns(filter_names=sorted(names))
        self._columns.update({key[1]: {c["name"] for c in columns} for key, columns in found.items()})

    def columns(self, name: str) -> set[str]:
        """The table's columns now (none for a table that does not exist yet)."""
        if name not in self.tables:
            return set()
        if name not in self._columns:
            self.read({name})
        return self._columns.get(name, set())


def _classified(live: Live, metadata: MetaData, diff: tuple[Any, ...]) -> Change:
    kind, connection = diff[0], live.connection
    if kind == "add_column":
        return _added_column(live, diff)
    if kind == "remove_column":
        return _dropped_column(connection, metadata, diff)
    if kind in ("modify_type", "modify_nullable", "modify_comment"):
        change = _modified(connection, diff)
        if kind == "modify_type" and metadata.tables[change.table].c[diff[3]].primary_key:
            return replace(change, destructive=True, blocked="the type of a primary key column cannot change (rows "
                                                             "of other tables and clients' URLs refer to it): "
                                                             "declare a new table")
        return change
    if kind in ("add_index", "remove_index"):
        index: Index = diff[1]
        columns = ", ".join(c if isinstance(c, str) else c.name for c in _index_columns(index))
        verb = "new index" if kind == "add_index" else "dropped index"
        return Change(kind, index.table.name, f"table {index.table.name!r}: {verb} {index.name!r} on ({columns})",
                      column=columns, after=index.name if kind == "add_index" else None,
                      before=index.name if kind == "remove_index" else None, diff=diff)
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        return _constraint(live, diff)
    if kind in ("add_table_comment", "remove_table_comment"):
        table: Table = diff[1]
        return Change("alter_comment", table.name, f"table {table.name!r}: its description changes",
                      after=table.comment, diff=diff)
    return Change(kind, _table_name(diff), f"table {_table_name(diff)!r}: {kind.replace('_', ' ')}",
                  destructive=True, blocked="this kind of change is not supported by schema evolution", diff=diff)


def _index_columns(index: Index) -> list[Any]:
    return list(index.columns) or list(index.expressions)


def _table_name(diff: tuple[Any, ...]) -> str:
    for item in diff[1:]:
        if isinstance(item, str) and item:
            return item
        if hasattr(item, "table") and hasattr(item.table, "name"):
            return str(item.table.name)
    return "?"


def _added_column(live: Live, diff: tuple[Any, ...]) -> Change:
    connection, name, column = live.connection, diff[2], diff[3]
    sql_type = shown(connection.dialect, column.type)
    where = f"table {name!r}: new column {column.name!r} ({sql_type}"
    if not column.nullable:
        blocked = None
        if _row_count(connection, name):
            blocked = ("the table has rows, which would have no value for it (the payload declares no default); "
                       "add it as an optional field, fill it, then make it required")
        return Change("add_column", name, f"{where}, required): a new NOT NULL column without a default",
                      destructive=True, column=column.name, after=sql_type, blocked=blocked, diff=diff)
    change = Change("add_column", name, f"{where}, nullable)", column=column.name, after=sql_type, diff=diff)
    field_name = _blind_field(column.name, live.columns(name))
    if field_name is not None:
        if _row_count(connection, name):
            return replace(change, description=f"table {name!r}: protected field {field_name!r} becomes searchable "
                                                f"(new blind-index column {column.name!r})",
                           blocked="its existing rows have no blind index, so equality filters would miss them; "
                                   "declare a new searchable field and copy the values through the API instead")
    return change


def _blind_field(column: str, fields: Iterable[str]) -> str | None:
    """The field whose blind-index column `column` is, among `fields` (None if it is no blind column).
    Matched by name through `blind_column_name`: a long field's blind column is shortened with a hash, so
    the field cannot be read back from it."""
    if not column.endswith(BLIND_SUFFIX):
        return None
    return next((f for f in fields if blind_column_name(f) == column), None)


def _dropped_column(connection: Connection, metadata: MetaData, diff: tuple[Any, ...]) -> Change:
    name, column = diff[2], diff[3]
    sql_type = shown(connection.dialect, column.type)
    desired = metadata.tables[name].c
    field_name = _blind_field(column.name, (c.name for c in desired))
    if field_name is not None and isinstance(desired[field_name].type, LargeBinary):
        return Change("drop_column", name, f"table {name!r}: protected field {field_name!r} is no longer searchable "
                                           f"(its blind-index column {column.name!r} is dropped; no value is lost)",
                      column=column.name, before=sql_type, diff=diff)
    rows = _row_count(connection, name)
    loss = f"its values in {rows} row(s) are lost" if rows else "the table has no rows"
    return Change("drop_column", name, f"table {name!r}: column {column.name!r} ({sql_type}) is dropped; {loss}",
                  destructive=True, column=column.name, before=sql_type, diff=diff)


def _modified(connection: Connection, diff: tuple[Any, ...]) -> Change:
    kind, name, column, old, new = diff[0], diff[2], diff[3], diff[5], diff[6]
    where = f"table {name!r}: column {column!r}"
    if kind == "modify_comment":
        return Change("alter_comment", name, f"{where}: its description changes", column=column, before=old,
                      after=new, diff=diff)
    if kind == "modify_nullable":
        if new:
            return Change("alter_nullable", name, f"{where} becomes optional (nullable)", column=column,
                          before="NOT NULL", after="NULL", diff=diff)
        nulls = _count(connection, name, column_of(column).is_(None))
        blocked = f"{nulls} row(s) have no value for it" if nulls else None
        return Change("alter_nullable", name, f"{where} becomes required (NOT NULL)", destructive=True,
                      column=column, before="NULL", after="NOT NULL", blocked=blocked, diff=diff)
    have, want = shown(connection.dialect, old), shown(connection.dialect, new)
    change = Change("alter_type", name, f"{where} changes type from {have} to {want}", destructive=True,
                    column=column, before=have, after=want, diff=diff)
    if isinstance(old, LargeBinary) != isinstance(new, LargeBinary):
        became = "protected" if isinstance(new, LargeBinary) else "a plain field"
        return replace(change, kind="alter_protection", description=f"{where} becomes {became}",
                       blocked="its stored values would need encrypting or decrypting, which schema evolution does "
                               "not do: declare a new field and copy the values through the API instead")
    if _widens(have, want, new):
        return replace(change, description=f"{where} widens from {have} to {want}", destructive=False)
    lost = _unconvertible(connection, name, column, want)
    blocked = None
    if lost:
        counted = f"{lost} stored value(s)" if lost > 0 else "stored values (the database refuses at least one)"
        blocked = f"{counted} would not survive the conversion to {want}"
    return replace(change, blocked=blocked)


INTEGERS = ("SMALLINT", "INTEGER", "BIGINT")


def _widens(have: str, want: str, new: TypeEngine[Any]) -> bool:
    """A type that holds every value of the old one, unchanged."""
    if have in INTEGERS:
        return (want in INTEGERS and INTEGERS.index(want) > INTEGERS.index(have)) or isinstance(new, ExactNumber)
    if have.startswith("VARCHAR"):
        if want == "TEXT":
            return True
        return want.startswith("VARCHAR(") and have.startswith("VARCHAR(") and _length(want) >= _length(have)
    return False


def _length(sql_type: str) -> int:
    return int(sql_type[sql_type.index("(") + 1:sql_type.index(")")])


def _constraint(live: Live, diff: tuple[Any, ...]) -> Change:
    kind, constraint = diff[0], diff[1]
    name = constraint.table.name
    columns = [c.name for c in constraint.columns]
    listed = ", ".join(columns)
    is_fk = isinstance(constraint, ForeignKeyConstraint)
    what = "foreign key" if is_fk else "unique constraint"
    if kind in ("remove_constraint", "remove_fk"):
        return Change(f"drop_{'foreign_key' if is_fk else 'unique'}", name,
                      f"table {name!r}: {what} on ({listed}) is dropped", column=listed, before=constraint.name,
                      diff=diff)
    if is_fk:
        target = constraint.elements[0].target_fullname.split(".")[0]
        orphans = _orphans(live, name, constraint)
        blocked = f"{orphans} row(s) refer to rows of {target!r} that do not exist" if orphans else None
        if blocked and target not in live.tables:
            blocked += f" (the payload creates {target!r}, so it starts empty)"
        return Change("add_foreign_key", name, f"table {name!r}: new foreign key ({listed}) → {target!r}",
                      column=listed, after=target, blocked=blocked, destructive=bool(orphans), diff=diff)
    # a column the generation adds is NULL in every row, and NULLs never duplicate one another
    duplicates = _duplicates(live.connection, name, columns) if set(columns) <= live.columns(name) else 0
    blocked = f"{duplicates} value(s) of ({listed}) occur more than once" if duplicates else None
    return Change("add_unique", name, f"table {name!r}: new unique constraint on ({listed})", column=listed,
                  after=constraint.name, blocked=blocked, destructive=bool(duplicates), diff=diff)


def _primary_key_changes(connection: Connection, tables: list[Table]) -> list[Change]:
    inspector = inspect(connection)
    changes = []
    for table in tables:
        have = inspector.get_pk_constraint(table.name).get("constrained_columns") or []
        want = [c.name for c in table.primary_key.columns]
        if sorted(have) != sorted(want):
            changes.append(Change("alter_primary_key", table.name,
                                  f"table {table.name!r}: primary key changes from {have} to {want}",
                                  destructive=True, before=", ".join(have), after=", ".join(want),
                                  blocked="changing the primary key of an existing table is not supported: "
                                          "declare a new table"))
    return changes


def _noting_renames(changes: list[Change]) -> list[Change]:
    """A dropped and an added column of one table read like a rename: say that it is not one."""
    added = defaultdict(list)
    for change in changes:
        if change.kind == "add_column":
            added[change.table].append(change.column)
    noted = []
    for change in changes:
        if change.kind == "drop_column" and added[change.table]:
            others = ", ".join(repr(n) for n in added[change.table])
            change = replace(change, description=f"{change.description} (if this is a rename to {others}: a rename "
                                                 "is a drop and an add, and the values are not carried over)")
        noted.append(change)
    return noted


# -- data checks ------------------------------------------------------------------------------------------


def _row_count(connection: Connection, name: str) -> int:
    return _count(connection, name)


def _count(connection: Connection, name: str, *conditions: Any) -> int:
    query = select(func.count()).select_from(table_of(name))
    return int(connection.execute(query.where(*conditions) if conditions else query).scalar() or 0)


def _unconvertible(connection: Connection, name: str, column: str, sql_type: str) -> int:
    """Values that the conversion would change or refuse: cast and back to text differs from the text.
    SQLite turns 'Ann' into 0 without a word; PostgreSQL refuses the cast, so the count is then -1."""
    quote = connection.dialect.identifier_preparer.quote
    col = quote(column)
    query = text(f"SELECT count(*) FROM {quote(name)} WHERE {col} IS NOT NULL "  # noqa: S608 (quoted names)
                 f"AND CAST(CAST({col} AS {sql_type}) AS TEXT) <> CAST({col} AS TEXT)")
    if connection.dialect.name == "sqlite":
        return int(connection.execute(query).scalar() or 0)
    try:
        with connection.begin_nested():
            return int(connection.execute(query).scalar() or 0)
    except (DataError, ProgrammingError):
        return -1


def _duplicates(connection: Connection, name: str, columns: list[str]) -> int:
    """How many distinct non-null values occur more than once."""
    cols = [column_of(c) for c in columns]
    grouped = (select(*cols).select_from(table_of(name, *cols)).where(*(c.is_not(None) for c in cols))
               .group_by(*cols).having(func.count() > 1))
    return int(connection.execute(select(func.count()).select_from(grouped.subquery())).scalar() or 0)


def _orphans(live: Live, name: str, constraint: ForeignKeyConstraint) -> int:
    """Rows whose (non-null) foreign key matches no row of the referenced table.

    A key column the generation adds is NULL in every row, and a key with a NULL is not checked: none. A
    referenced table (or column) the generation creates has no rows (values) yet: every row whose key is set."""
    keys = [c.name for c in constraint.columns]
    if not set(keys) <= live.columns(name):
        return 0
    child = table_of(name, *(column_of(c) for c in keys)).alias("child")
    elements = list(constraint.elements)
    target_name = elements[0].target_fullname.split(".")[0]
    if not {e.target_fullname.split(".")[1] for e in elements} <= live.columns(target_name):
        return _count(live.connection, name, *(column_of(c).is_not(None) for c in keys))
    connection = live.connection
    parent = table_of(target_name, *(column_of(e.target_fullname.split(".")[1]) for e in elements)).alias("parent")
    on = and_(*(child.c[e.parent.name] == parent.c[e.target_fullname.split(".")[1]] for e in elements))
    query = (select(func.count()).select_from(child.outerjoin(parent, on))
             .where(*(child.c[e.parent.name].is_not(None) for e in elements),
                    parent.c[elements[0].target_fullname.split(".")[1]].is_(None)))
    return int(connection.execute(query).scalar() or 0)


# -- applying ------------------------------------------------------------------------------------------------


def apply(connection: Connection, metadata: MetaData, changes: list[Change]) -> list[str]:
    """Run the changes to existing tables, one batch per table, in the caller's transaction; the tables
    changed. A change the database refuses raises `EvolutionRefused` (the caller rolls back)."""
    by_table: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        if change.alters_table:
            by_table[change.table].append(change)
    operations = Operations(MigrationContext.configure(connection))
    sqlite = connection.dialect.name == "sqlite"
    for name, table_changes in by_table.items():
        desired = metadata.tables[name]
        kwargs: dict[str, Any] = {}
        if sqlite:
            kwargs["table_kwargs"] = {"sqlite_autoincrement": bool(desired.kwargs.get("sqlite_autoincrement"))}
            sequence = _sqlite_sequence(connection, name)
        try:
            with operations.batch_alter_table(name, **kwargs) as batch:
                for change in table_changes:
                    _run(batch, desired, change.diff, sqlite)
        except (DataError, IntegrityError) as exc:  # a cast the values refuse (PostgreSQL), a constraint they break
            reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            failed = [replace(c, blocked=f"the database refused it: {reason}") for c in table_changes]
            raise EvolutionRefused(failed, list(changes)) from None
        comments = [c for c in table_changes if c.diff[0] in ("add_table_comment", "remove_table_comment")]
        for _ in comments:
            operations.create_table_comment(name, desired.comment) if desired.comment else \
                operations.drop_table_comment(name)
        if sqlite and sequence is not None:
            _restore_sqlite_sequence(connection, name, sequence)
    return list(by_table)


def _run(batch: Any, desired: Table, diff: tuple[Any, ...], sqlite: bool) -> None:
    kind = diff[0]
    if kind == "add_column":
        column: Column[Any] = diff[3]
        batch.add_column(Column(column.name, column.type, nullable=column.nullable, comment=column.comment))
    elif kind == "remove_column":
        batch.drop_column(diff[3].name)
    elif kind == "modify_type":
        extra = {} if sqlite else {"postgresql_using": _using(batch, diff[3], diff[6])}
        batch.alter_column(diff[3], type_=diff[6], existing_type=diff[5], **extra,
                           existing_nullable=diff[4].get("existing_nullable"))
    elif kind == "modify_nullable":
        batch.alter_column(diff[3], nullable=diff[6], existing_type=diff[4].get("existing_type"))
    elif kind == "modify_comment":
        batch.alter_column(diff[3], comment=diff[6], existing_comment=diff[5], existing_type=diff[4].get(
            "existing_type"), existing_nullable=diff[4].get("existing_nullable"))
    elif kind == "add_index":
        index: Index = diff[1]
        batch.create_index(index.name, [c.name for c in index.columns], unique=index.unique)
    elif kind == "remove_index":
        batch.drop_index(diff[1].name)
    elif kind == "add_constraint":
        constraint: UniqueConstraint = diff[1]
        batch.create_unique_constraint(constraint.name, [c.name for c in constraint.columns])
    elif kind == "add_fk":
        fk: ForeignKeyConstraint = diff[1]
        elements = list(fk.elements)
        batch.create_foreign_key(fk.name, elements[0].target_fullname.split(".")[0], [e.parent.name for e in elements],
                                 [e.target_fullname.split(".")[1] for e in elements], ondelete=fk.ondelete)
    elif kind in ("remove_constraint", "remove_fk"):
        batch.drop_constraint(diff[1].name, type_="foreignkey" if kind == "remove_fk" else "unique")


def _using(batch: Any, column: str, new: TypeEngine[Any]) -> str:
    """PostgreSQL's cast for an ALTER COLUMN TYPE (it will not cast TEXT to BIGINT on its own)."""
    dialect = batch.impl.dialect
    return f"{dialect.identifier_preparer.quote(column)}::{shown(dialect, new)}"


def _sqlite_sequence(connection: Connection, name: str) -> int | None:
    """The table's AUTOINCREMENT high-water mark: a recreated table would start again from its largest id."""
    if not connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
        return None
    return connection.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :n"), {"n": name}).scalar()


def _restore_sqlite_sequence(connection: Connection, name: str, seq: int) -> None:
    current = _sqlite_sequence(connection, name)
    if current is None:
        connection.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :s)"), {"n": name, "s": seq})
    elif current < seq:
        connection.execute(text("UPDATE sqlite_sequence SET seq = :s WHERE name = :n"), {"n": name, "s": seq})


def foreign_key_violations(connection: Connection) -> list[str]:
    """SQLite, after tables were recreated with foreign keys off: every row that breaks a foreign key."""
    rows = connection.execute(text("PRAGMA foreign_key_check")).all()
    return [f"table {row[0]!r}: row {row[1]} refers to a missing row of {row[2]!r}" for row in rows[:20]]



def route_changes(previous: Generation, generation: Generation) -> list[Change]:
    """Routes served or no longer served: no DDL, and no data lost either way."""
    def routes(g: Generation) -> dict[str, str]:
        return {f"{op.method.upper()} {op.served_path}": op.resource for op in g.operations}

    before, after = routes(previous), routes(generation)
    added = [Change("add_route", after[r], f"new route {r}", after=r) for r in after if r not in before]
    return added + [Change("remove_route", before[r], f"route {r} is no longer served", before=r)
                    for r in before if r not in after]
