"""Statement plans, built once per generation: one object per resource whose statements a request only fills.

Slots a request fills: the key binds, the filter tree (the query grammar), the caller's row filter (a
SQL condition from the authorization hook; None while none is attached), the order and cursor, the page,
the selected columns and the embeds. Plans return rows as dicts; rendering is elsewhere (`render.py`) and
transactions and error mapping in `execution.py`.

Updates are prebuilt too: PUT sets every non-key column; PATCH sets a subset, and its statement is built
the first time that subset of columns is seen and kept (an LRU of compiled statements per column set)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property, lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from generator.api.bulk_copy import COPY_FROM_ROWS, copy_rows, draw_serial_keys
from generator.api.query import Embed, QueryError, ReadQuery
from generator.api.relations import Relation, embed_into, group_related, related_rows_statement
from generator.api.sql import SortKey, decode_cursor, encode_cursor, seek, sort_keys, where
from generator.crypto.cipher import FieldCipher
from generator.errors import Issue, Problem, bad_request
from generator.models.columns import FieldColumn, field_columns
from generator.models.protected import Protection
from generator.payload.specs import ResourceSpec

Row = dict[str, Any]
ESTIMATE_EXACT_BELOW = 10_000  # `count=estimated`: exact when the planner expects fewer rows than this
KEYS_PER_READ = 500  # keys per IN list when reading rows back by key
FILTERED_STATEMENTS = 512  # statements kept per plan for callers' row filters (`_filtered`)


class ResourcePlan:
    def __init__(self, resource: ResourceSpec, table: Table, dialect: str,
                 relations: Mapping[str, Relation], ciphers: Mapping[str, FieldCipher] | None = None) -> None:
        self.resource, self.table, self.dialect, self.relations = resource, table, dialect, relations
        self.columns: dict[str, FieldColumn] = field_columns(resource, table, dialect, ciphers)
        # Rows hold the fields; a protected field's blind-index column is storage, never read back.
        self.names = [f.name for f in resource.fields]
        self.selected = [table.c[name] for name in self.names]
        self.protection = Protection(resource, ciphers) if ciphers else None
        self.peers: Mapping[str, ResourcePlan] = {}  # every plan of the generation, for embedded rows
        self._by_filter: dict[tuple[str, int], tuple[Any, Any]] = {}  # see `_filtered`
        self.key_names = list(resource.primary_key)
        self.keys = [table.c[name] for name in self.key_names]
        self.key_params = [f"_k{i}" for i in range(len(self.keys))]
        self.by_key = and_(*(c == bindparam(p) for c, p in zip(self.keys, self.key_params, strict=True)))
        self.select_one = select(*self.selected).where(self.by_key)
        self.select_for_update = self.select_one.with_for_update() if dialect == "postgresql" else self.select_one
        self.delete_one = delete(table).where(self.by_key)
        self.insert_key = insert(table).returning(*self.keys, sort_by_parameter_order=True)
        self.insert_row = insert(table).returning(*self.selected)
        self.value_names = [n for n in self.names if n not in self.key_names]
        blind = list(self.protection.blind_names.values()) if self.protection else []
        self.write_names = self.value_names + blind  # what PUT and upserts set: values and blind indexes

        self.serial = self.keys[0] if resource.autoincrement and dialect == "postgresql" else None
        if self.serial is not None:
            self._sequence_statements()
        self.default_keys = sort_keys((), self.columns, self.key_names)
        self.page = select(*self.selected).order_by(*(k.clause() for k in self.default_keys))
        self.plain_page = self.page.limit(bindparam("_limit")).offset(bindparam("_offset"))

    # -- reads --------------------------------------------------------------------------------------------

    def by_key_values(self, values: Sequence[Any]) -> ColumnElement[bool]:
        return and_(*(c == v for c, v in zip(self.keys, values, strict=True)))

    def _filtered(self, name: str, statement: Any, row_filter: ColumnElement[bool] | None) -> Any:
        """`statement` with the caller's row filter, kept per filter: a policy hands the same condition object
        to every request of the same claims (`policies/data_products._rows_of`), so a client's requests reuse
        one statement and its memoised cache key. Bounded: an unbounded set of claims cannot grow it."""
        found = self._by_filter.get((name, id(row_filter)))
        if found is not None and found[0] is row_filter:
            return found[1]
        if len(self._by_filter) >= FILTERED_STATEMENTS:
            self._by_filter.clear()
        filtered = statement.where(row_filter)
        self._by_filter[(name, id(row_filter))] = (row_filter, filtered)
        return filtered

    def row_of(self, fetched: Sequence[Any]) -> Row:
        """A fetched row (its columns in `names` order) as a dict, protected fields decrypted."""
        row = dict(zip(self.names, fetched, strict=True))
        return row if self.protection is None else self.protection.open(row)

    def rows_of(self, fetched: Sequence[Sequence[Any]], only: Sequence[str] | None = None) -> list[Row]:
        """`row_of` for many rows: protected fields decrypted column by column (`Protection.open_rows`);
        with `only` (the query's `select`), the protected fields it leaves out are dropped, not decrypted."""
        names = self.names
        rows = [dict(zip(names, row, strict=True)) for row in fetched]
        if self.protection is not None:
            self.protection.open_rows(rows, only)
        return rows

    def key_binds(self, values: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.key_params, values, strict=True))

    def read(self, connection: Connection, key: Sequence[Any], row_filter: ColumnElement[bool] | None = None,
             *, for_update: bool = False) -> Row | None:
        statement = self.select_for_update if for_update else self.select_one
        if row_filter is not None:
            statement = self._filtered("read" if not for_update else "lock", statement, row_filter)
        row = connection.execute(statement, self.key_binds(key)).first()
        return None if row is None else self.row_of(row)

    def conditions(self, query: ReadQuery, row_filter: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
        found = [c for c in (where(query.where, self.columns), row_filter) if c is not None]
        return found

    def rows(self, connection: Connection, query: ReadQuery, row_filter: ColumnElement[bool] | None = None,
             *, extra: ColumnElement[bool] | None = None) -> tuple[list[Row], str | None]:
        """One page (and the cursor of the next page, if there is one)."""
        keys = self.default_keys if not query.order else sort_keys(query.order, self.columns, self.key_names)
        statement = self.page if not query.order else select(*self.selected).order_by(*(k.clause() for k in keys))
        conditions = self.conditions(query, row_filter)
        if extra is not None:
            conditions.append(extra)
        if query.cursor is not None:
            conditions.append(seek(keys, self._cursor_values(query.cursor, keys)))
        only_filter = len(conditions) == 1 and conditions[0] is row_filter and query.cursor is None
        if not query.order and (not conditions or only_filter):
            # the plain page (or the caller's row filter alone): one statement kept, limit and offset bound,
            # so neither a statement nor its cache key is built per request
            binds = {"_limit": query.limit + 1, "_offset": 0 if query.cursor is not None else query.offset}
            page = self.plain_page if not conditions else self._filtered("page", self.plain_page, row_filter)
            fetched = connection.execute(page, binds).all()
        else:
            if conditions:
                statement = statement.where(*conditions)
            statement = statement.limit(query.limit + 1)
            if query.cursor is None and query.offset:
                statement = statement.offset(query.offset)
            fetched = connection.execute(statement).all()
        rows = self.rows_of(fetched[: query.limit], query.select)  # the cursor's sort keys are never protected
        cursor = encode_cursor(keys, rows[-1]) if len(fetched) > query.limit else None
        return rows, cursor

    @staticmethod
    def _cursor_values(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
        """A client's cursor may be stale, edited or from another query: a 400 pointing at it, never a 500."""
        try:
            return decode_cursor(cursor, keys)
        except QueryError as exc:
            raise bad_request("The cursor is invalid", [Issue("/query/cursor", str(exc))]) from None

    def count(self, connection: Connection, query: ReadQuery, row_filter: ColumnElement[bool] | None,
              how: str, *, extra: ColumnElement[bool] | None = None) -> int:
        """`exact` counts; `planned` asks PostgreSQL's planner; `estimated` is exact for small results."""
        statement = select(func.count()).select_from(self.table)
        conditions = self.conditions(query, row_filter) + ([extra] if extra is not None else [])
        if conditions:
            statement = statement.where(*conditions)
        if how == "exact" or self.dialect != "postgresql":
            return int(connection.execute(statement).scalar_one())
        planned = self._planned(connection, select(self.table).where(*conditions))
        if how == "estimated" and planned < ESTIMATE_EXACT_BELOW:
            return int(connection.execute(statement).scalar_one())
        return planned

    @staticmethod
    def _planned(connection: Connection, statement: Select[Any]) -> int:
        # render_postcompile: `in` lists are expanded at execution time, which EXPLAIN's text must do itself
        compiled = statement.compile(connection, compile_kwargs={"render_postcompile": True})
        plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
        return int(plan[0]["Plan"]["Plan Rows"])

    def embed(self, connection: Connection, rows: list[Row], embeds: Sequence[Embed],
              filters: Mapping[str, ColumnElement[bool] | None] | None = None) -> None:
        """Related rows inline under each embed's name: one query per embed for the whole page."""
        for item in embeds:  # checked before any row is loaded: `team(nme)` is a 400, not a silent omission
            target_columns = self.table.metadata.tables[self.relations[item.name].target].columns
            unknown = [c for c in item.columns or () if c not in target_columns]
            if unknown:
                names = ", ".join(map(repr, unknown))
                target = self.relations[item.name].target
                raise bad_request("The query is invalid", [Issue(
                    "/query/select", f"cannot select {names} of {item.name}: not a field of {target}")])
        for item in embeds:
            relation = self.relations[item.name]
            keys = {tuple(row[c] for c in relation.local) for row in rows}
            keys = {key for key in keys if None not in key}
            peer = self.peers[relation.target]
            grouped: Mapping[tuple[Any, ...], Any] = {}
            if keys:
                statement = related_rows_statement(relation, self.table.metadata, sorted(keys, key=repr),
                                                   (filters or {}).get(relation.target), peer.selected)
                opener = None if peer.protection is None else peer.protection.open_rows
                grouped = group_related(relation, connection.execute(statement).all(), peer.names, opener)
            if item.columns is not None:
                grouped = {k: _project(v, item.columns) for k, v in grouped.items()}
            embed_into(rows, relation, item.name, grouped)

    # -- writes -------------------------------------------------------------------------------------------

    def _update_statement(self, names: tuple[str, ...]) -> Any:
        values = {name: bindparam(f"v_{name}") for name in names}
        return update(self.table).where(self.by_key).values(values).returning(*self.selected)

    @lru_cache(maxsize=256)  # noqa: B019 - one plan per generation; the cache dies with it
    def update_statement(self, names: frozenset[str]) -> Any:
        return self._update_statement(tuple(sorted(names)))

    @cached_property
    def replace_one(self) -> Any:
        """PUT's UPDATE of every non-key column (built on first use: most tables are never PUT to)."""
        return self._update_statement(tuple(self.write_names))

    @cached_property
    def upsert_key(self) -> Any:
        return self._upsert(returning=self.keys)

    def _upsert(self, returning: Sequence[Any], where: ColumnElement[bool] | None = None) -> Any:
        """INSERT that replaces the non-key columns of a row whose key exists (both dialects' ON CONFLICT);
        `where` limits which existing rows it may replace."""
        dialect_insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        statement = dialect_insert(self.table)
        changed = {name: statement.excluded[name] for name in self.write_names}
        if changed:
            statement = statement.on_conflict_do_update(index_elements=self.keys, set_=changed, where=where)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=self.keys)
        return statement.returning(*returning, sort_by_parameter_order=True)

    def insert_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]], *, upsert: bool,
                    row_filter: ColumnElement[bool] | None = None) -> list[Any]:
        """Insert (or upsert) rows, returning their keys in the order given. Rows that name the same columns
        go in one statement (SQLAlchemy batches them into multi-row INSERTs), so 100,000 rows cost a few
        hundred statements, not 100,000. An upsert with the caller's `row_filter` only updates existing rows
        the caller may reach; any other existing key is a 409, as a plain insert's would be."""
        if self.dialect == "postgresql" and not upsert and len(rows) >= COPY_FROM_ROWS:
            if self.protection is not None:  # keys drawn first, rows sealed while COPY streams them
                return self._copy_many(connection, self.keyed_rows(connection, rows), sealing=True)
            return self._copy_many(connection, rows)
        if self.protection is not None:
            rows = self.sealed_rows(connection, rows)
        keys: list[Any] = [None] * len(rows)
        groups: dict[tuple[str, ...], list[int]] = {}
        for index, row in enumerate(rows):
            groups.setdefault(tuple(sorted(row)), []).append(index)
        statement = self.insert_key if not upsert else (
            self.upsert_key if row_filter is None else self._upsert(returning=self.keys, where=row_filter))
        for indexes in groups.values():
            returned = connection.execute(statement, [rows[i] for i in indexes]).all()
            if len(returned) != len(indexes) and upsert and row_filter is not None and self.value_names:
                raise Problem(409, "Conflict", f"A {self.table.name} row with one of these keys already exists "
                                               "outside the rows you may change; nothing was written")
            if len(returned) != len(indexes):  # ON CONFLICT DO NOTHING (a table of keys only) skips rows
                returned = [tuple(rows[i].get(n) for n in self.key_names) for i in indexes]
            for index, key in zip(indexes, returned, strict=True):
                keys[index] = tuple(key)
        return keys

    def sealed_rows(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Rows to store: database-assigned keys taken first (the associated data binds each ciphertext to
        its row's key), then protected values encrypted and blind-indexed (`models/protected.py`)."""
        assert self.protection is not None
        return self.protection.seal_rows(self.keyed_rows(connection, rows))

    def keyed_rows(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Row]:
        """Copies of `rows` with database-assigned keys drawn for those without one."""
        filled = [dict(row) for row in rows]
        if self.resource.autoincrement:
            name = self.key_names[0]
            missing = [row for row in filled if row.get(name) is None]
            for row, key in zip(missing, self._draw_keys(connection, len(missing)), strict=True):
                row[name] = key
        return filled

    def sealed_row(self, row: Mapping[str, Any]) -> Row:
        """One row whose key is complete, ready to store."""
        return dict(row) if self.protection is None else self.protection.seal(row)

    def sealed_changes(self, key: Sequence[Any], changes: Mapping[str, Any]) -> Row:
        """The columns an update of row `key` sets (protected values encrypted for that row)."""
        return dict(changes) if self.protection is None else self.protection.seal_changes(key, changes)

    def _draw_keys(self, connection: Connection, count: int) -> list[int]:
        """`count` new automatic keys. PostgreSQL: from the sequence. SQLite: past both `sqlite_sequence` and
        the highest key; safe because a SQLite write holds the database's write lock from its BEGIN."""
        if not count:
            return []
        if self.serial is not None:
            return draw_serial_keys(connection, self.table, self.serial, count)
        quoted = self.table.name.replace('"', '""')
        key = self.key_names[0].replace('"', '""')
        last = connection.execute(text(
            f'SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = :_t), 0), '
            f'COALESCE((SELECT max("{key}") FROM "{quoted}"), 0))'), {"_t": self.table.name}).scalar_one()
        return list(range(int(last) + 1, int(last) + 1 + count))

    def _copy_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]], *, sealing: bool = False
                   ) -> list[Any]:
        """New rows by COPY (see `bulk_copy`): serial keys drawn first, rows grouped by the columns they name.

        `sealing`: `rows` are `keyed_rows` of a protected table, sealed a chunk at a time as COPY consumes
        them, so PostgreSQL stores one chunk (on the other core) while the next is encrypted."""
        filled = [dict(row) for row in rows] if not sealing else cast(list[Row], rows)
        if self.serial is not None:
            name = self.serial.name
            missing = [row for row in filled if row.get(name) is None]
            for row, key in zip(missing, draw_serial_keys(connection, self.table, self.serial, len(missing)),
                                strict=True):
                row[name] = key
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in filled:
            groups.setdefault(tuple(row), []).append(row)
        for names, group in groups.items():
            if sealing and self.protection is not None:
                copy_rows(connection, self.table, self.protection.sealing(group), self.protection.sealed_names(names))
            else:
                copy_rows(connection, self.table, group, names)
        return [self.key_of(row) for row in filled]

    # PostgreSQL: a client-chosen serial key must not be handed out again by the table's sequence. The
    # sequence may only move forward (moving it back to max(id) hands out ids that inserts still in flight
    # already hold). A write with a chosen key above the sequence takes SHARE ROW EXCLUSIVE on the table
    # first, before any other statement of its transaction: that waits for the inserts in flight and holds
    # back new ones (and their nextval); after the write, setval moves the sequence to the key. A chosen key
    # below the sequence changes nothing and locks nothing.

    def _sequence_statements(self) -> None:
        quoted = self.table.name.replace('"', '""')
        sequence = "CAST(pg_get_serial_sequence(:_table, :_column) AS regclass)"
        self.sequence_names = {"_table": f'"{quoted}"', "_column": self.serial.name}  # type: ignore[union-attr]
        self.sequence_last = text(f"SELECT pg_sequence_last_value({sequence})")
        self.sequence_raise = text(
            f"SELECT setval({sequence}, GREATEST(:_key, COALESCE(pg_sequence_last_value({sequence}), 1)))")
        self.lock_table = text(f'LOCK TABLE "{quoted}" IN SHARE ROW EXCLUSIVE MODE')

    def claim_keys(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int | None:
        """The highest client-chosen serial key the sequence must pass after the write (table locked for
        it), or None. Must run first in its transaction: a later lock would be an upgrade that deadlocks."""
        if self.serial is None:
            return None
        chosen = [row[self.serial.name] for row in rows if row.get(self.serial.name) is not None]
        if not chosen:
            return None
        last = connection.execute(self.sequence_last, self.sequence_names).scalar()
        highest = max(chosen)
        if highest <= (last or 0):
            return None
        connection.execute(self.lock_table)
        return int(highest)

    def advance_sequence(self, connection: Connection, chosen: int | None) -> None:
        if chosen is not None:
            connection.execute(self.sequence_raise, {**self.sequence_names, "_key": chosen})

    def update_binds(self, key: Sequence[Any], values: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.key_binds(key), **{f"v_{name}": value for name, value in values.items()}}

    def key_of(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key_names)

    def keys_exist(self, connection: Connection, keys: Sequence[tuple[Any, ...]],
                   row_filter: ColumnElement[bool] | None = None) -> set[tuple[Any, ...]]:
        """Which of `keys` are rows of this table the caller may reach: one query however many keys."""
        if not keys:
            return set()
        statement = select(*self.keys).where(tuple_(*self.keys).in_(list(keys)))
        if row_filter is not None:
            statement = statement.where(row_filter)
        return {tuple(row) for row in connection.execute(statement).all()}

    # -- writes filtered by a query (the PostgREST surface) ------------------------------------------------

    def update_where(self, conditions: Sequence[ColumnElement[bool]], values: Mapping[str, Any]) -> Any:
        """UPDATE the rows matching `conditions` (from `conditions(query, row_filter)`), returning them whole.
        No values: the matching rows, unchanged (a SELECT), as PostgREST answers an empty PATCH."""
        if not values:
            return select(*self.selected).where(*conditions)
        return update(self.table).where(*conditions).values(dict(values)).returning(*self.selected)

    def delete_where(self, conditions: Sequence[ColumnElement[bool]]) -> Any:
        """DELETE the rows matching `conditions`, returning them whole."""
        return delete(self.table).where(*conditions).returning(*self.selected)

    @lru_cache(maxsize=256)  # noqa: B019 - one plan per generation; the cache dies with it
    def conflict_insert(self, target: tuple[str, ...], names: tuple[str, ...], merge: bool) -> Any:
        return self._conflict_insert(target, names, merge)

    def _conflict_insert(self, target: tuple[str, ...], names: tuple[str, ...], merge: bool,
                         where: ColumnElement[bool] | None = None) -> Any:
        """INSERT ... ON CONFLICT (target): set only the columns sent (`names`, never keys or the target), or do
        nothing; returning the keys of the rows inserted or merged (a skipped duplicate returns none). `where`
        limits the existing rows a merge may change (the caller's row filter)."""
        dialect_insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        statement = dialect_insert(self.table)
        index = [self.table.c[name] for name in target]
        if merge:
            changed = {n: statement.excluded[n] for n in names if n not in target and n not in self.key_names}
            # nothing else sent: set the target to itself, so the existing row is still returned
            statement = statement.on_conflict_do_update(index_elements=index, where=where,
                                                        set_=changed or {target[0]: statement.excluded[target[0]]})
        else:
            statement = statement.on_conflict_do_nothing(index_elements=index)
        return statement.returning(*self.keys)

    def conflict_insert_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]],
                             target: Sequence[str], merge: bool,
                             row_filter: ColumnElement[bool] | None = None) -> list[tuple[Any, ...]]:
        """`conflict_insert` for many rows: one statement per set of columns sent (batched multi-row INSERTs)."""
        if self.protection is not None:
            rows = self.sealed_rows(connection, rows)
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        keys: list[tuple[Any, ...]] = []
        for names, group in groups.items():
            statement = (self.conflict_insert(tuple(target), names, merge) if row_filter is None or not merge
                         else self._conflict_insert(tuple(target), names, merge, row_filter))
            found = [tuple(key) for key in connection.execute(statement, group).all()]
            if merge and row_filter is not None and len(found) != len(group):
                raise Problem(409, "Conflict", f"A {self.table.name} row with one of these keys already exists "
                                               "outside the rows you may change; nothing was written")
            keys += found
        return keys

    def rows_by_keys(self, connection: Connection, keys: Sequence[tuple[Any, ...]]) -> list[Row]:
        """The rows with these keys, in the order of `keys` (a few hundred keys per query)."""
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[Any, ...], Row] = {}
        for start in range(0, len(unique), KEYS_PER_READ):
            chunk = unique[start:start + KEYS_PER_READ]
            match = (self.keys[0].in_([k[0] for k in chunk]) if len(self.keys) == 1
                     else tuple_(*self.keys).in_(chunk))
            for row in self.rows_of(connection.execute(select(*self.selected).where(match)).all()):
                found[self.key_of(row)] = row
        return [found[key] for key in unique if key in found]



def _project(value: Any, columns: Sequence[str]) -> Any:
    if isinstance(value, list):
        return [{c: row[c] for c in columns if c in row} for row in value]
    if isinstance(value, dict):
        return {c: value[c] for c in columns if c in value}
    return value


__all__ = ["ResourcePlan", "SortKey", "ESTIMATE_EXACT_BELOW"]
