"""Reads and writes of entities, aspect versions and relationships, on a caller's connection (one request
or one generation is one transaction). No HTTP here: refusals are `Problem`s raised by the callers' rules,
except the two this layer alone can judge race-free, `PreconditionFailed` (412) and `EntityExists` (422).

Writers of an aspect take turns on its `drg_md_aspects` row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
writers hold the database lock from BEGIN IMMEDIATE), so a conditional write compares with the version that
is really current, and a patch applies to the value that is really current.

Statements are built once per dialect (`_statements`). On PostgreSQL a list of URNs is one bound parameter,
a JSON array (`urn IN (SELECT json_array_elements_text(:urns))`): an expanding IN renders 100 parameters into
new SQL at each execution, and psycopg writes a Python list as an array element by element in Python (about
0.5 ms for 100 URNs); SQLite keeps an expanding IN. Aspect values are read as their stored JSON text and
parsed only when asked (`AspectRecord.value`): batchGet writes the text straight into its answer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Select

from generator.codec import dumps_text, loads
from generator.metadata.aspects import RELATING, derived_relationships
from generator.metadata.tables import aspect_versions, aspects, entities, now, now_millis, relationships
from generator.metadata.urns import Urn

DEFAULT_RUN_ID = "no-run-id-provided"


class PreconditionFailed(Exception):
    """A conditional write whose condition does not hold (412); the message says what was expected."""


class EntityExists(Exception):
    """`createEntityIfNotExists` for an entity that exists (422)."""


@dataclass
class AspectRecord:
    urn: str
    aspect: str
    version: int
    text: str  # the value as stored: JSON text, without `__type`
    millis: int  # when it was written, epoch milliseconds
    actor: str
    run_id: str
    system: bool

    @cached_property
    def value(self) -> dict[str, Any]:
        """The value, parsed on first use (a batchGet answers the text as it is)."""
        parsed: dict[str, Any] = loads(self.text)
        return parsed

    @classmethod
    def of(cls, row: Row[Any]) -> AspectRecord:
        """From a row of `_records` (its columns in the order of the fields)."""
        urn, aspect, version, text, millis, actor, run_id, system = row
        return cls(urn, aspect, version, text, millis, actor, run_id, bool(system))


def _records(table: Table) -> Select[Any]:
    """SELECT of an aspect table's columns in `AspectRecord`'s order."""
    c = table.c
    return select(c.urn, c.aspect, c.version, c.value, c.created_ms, c.actor, c.run_id, c.system)


def _one_of(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name` (`_listed` makes its value): on PostgreSQL a JSON array,
    one text parameter; elsewhere an expanding IN."""
    if dialect == "postgresql":
        return column.in_(select(func.json_array_elements_text(cast(bindparam(name, type_=Text), JSON)))
                          .scalar_subquery())
    return column.in_(bindparam(name, expanding=True))


def _listed(connection: Connection, values: list[str]) -> Any:
    return dumps_text(values) if connection.dialect.name == "postgresql" else values


@cache
def _statements(dialect: str) -> dict[str, Any]:
    """The statements of every request, built once per dialect (their SQL compiled once, then cached)."""
    a = aspects.c
    key = and_(a.urn == bindparam("b_urn"), a.aspect == bindparam("b_aspect"))
    current = and_(_one_of(a.urn, "urns", dialect), a.version > 0)
    named = _one_of(a.aspect, "names", dialect)
    locked = _records(aspects).where(key)
    # entities left-joined to their latest aspects: (urn, removed, aspect or NULL, version, ...)
    joined = (select(entities.c.urn, entities.c.removed, a.aspect, a.version, a.value, a.created_ms, a.actor,
                     a.run_id, a.system)
              .where(_one_of(entities.c.urn, "urns", dialect)).order_by(entities.c.urn, a.aspect))
    on = and_(a.urn == entities.c.urn, a.version > 0)
    return {
        "entities": select(entities).where(_one_of(entities.c.urn, "urns", dialect)),
        "entities_latest": joined.select_from(entities.outerjoin(aspects, on)),
        "entities_latest_named": joined.select_from(entities.outerjoin(aspects, and_(on, named))),
        "latest": _records(aspects).where(current).order_by(a.urn, a.aspect),
        "latest_named": _records(aspects).where(current, named).order_by(a.urn, a.aspect),
        "locked": locked.with_for_update() if dialect == "postgresql" else locked,
        "update": update(aspects).where(key),
        "insert": insert(aspect_versions),
        "unlink": delete(relationships).where(relationships.c.source == bindparam("b_urn"),
                                              relationships.c.aspect == bindparam("b_aspect")),
    }


def _insert(connection: Connection) -> Any:
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert


# -- entities -------------------------------------------------------------------------------------------

def ensure_entity(connection: Connection, urn: Urn) -> bool:
    """Create the entity if missing; True if this call created it (race-free: the insert decides)."""
    statement = (_insert(connection)(entities).values(urn=urn.text, entity_type=urn.entity_type, removed=False,
                                                       created_at=now())
                 .on_conflict_do_nothing().returning(entities.c.urn))
    return connection.execute(statement).first() is not None


def entity_rows(connection: Connection, urns: Iterable[str]) -> dict[str, Row[Any]]:
    wanted = sorted(set(urns))
    if not wanted:
        return {}
    statement = _statements(connection.dialect.name)["entities"]
    return {r.urn: r for r in connection.execute(statement, {"urns": _listed(connection, wanted)}).all()}


def set_removed(connection: Connection, urn: str, removed: bool) -> None:
    connection.execute(update(entities).where(entities.c.urn == urn).values(removed=removed))


def hard_delete(connection: Connection, urn: str) -> int:
    """Remove the entity, every version of its aspects and every link from or to it; rows removed."""
    count = 0
    for statement in (delete(aspect_versions).where(aspect_versions.c.urn == urn),
                      delete(aspects).where(aspects.c.urn == urn),
                      delete(relationships).where(or_(relationships.c.source == urn,
                                                      relationships.c.destination == urn)),
                      delete(entities).where(entities.c.urn == urn)):
        count += connection.execute(statement).rowcount or 0
    return count


# -- aspects --------------------------------------------------------------------------------------------

def latest(connection: Connection, urns: Iterable[str],
           names: Iterable[str] | None = None) -> dict[str, dict[str, AspectRecord]]:
    """The latest version of each aspect of each entity (only `names` when given)."""
    wanted = sorted(set(urns))
    found: dict[str, dict[str, AspectRecord]] = {}
    if not wanted:
        return found
    statements = _statements(connection.dialect.name)
    if names is None:
        rows = connection.execute(statements["latest"], {"urns": _listed(connection, wanted)}).all()
    else:
        rows = connection.execute(statements["latest_named"], {"urns": _listed(connection, wanted),
                                                               "names": _listed(connection, sorted(set(names)))}).all()
    for record in map(AspectRecord.of, rows):
        found.setdefault(record.urn, {})[record.aspect] = record
    return found


def entities_latest(connection: Connection, urns: Iterable[str], names: Iterable[str] | None = None
                    ) -> tuple[dict[str, bool], dict[str, dict[str, AspectRecord]]]:
    """`entity_rows` (as urn -> removed) and `latest` in one statement: consistent without a transaction, so a
    read can run in autocommit (no BEGIN and ROLLBACK round trips)."""
    wanted = sorted(set(urns))
    removed: dict[str, bool] = {}
    found: dict[str, dict[str, AspectRecord]] = {}
    if not wanted:
        return removed, found
    statements = _statements(connection.dialect.name)
    if names is None:
        rows = connection.execute(statements["entities_latest"], {"urns": _listed(connection, wanted)}).all()
    else:
        rows = connection.execute(statements["entities_latest_named"], {
            "urns": _listed(connection, wanted), "names": _listed(connection, sorted(set(names)))}).all()
    for urn, gone, aspect, version, text, millis, actor, run_id, system in rows:
        removed[urn] = bool(gone)
        if aspect is not None:
            found.setdefault(urn, {})[aspect] = AspectRecord(urn, aspect, version, text, millis, actor, run_id,
                                                             bool(system))
    return removed, found


def versions(connection: Connection, wanted: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str, int],
                                                                                     AspectRecord]:
    """Given (urn, aspect, version) triples, the versions that exist."""
    keys = sorted(set(wanted))
    if not keys:
        return {}
    columns = tuple_(aspect_versions.c.urn, aspect_versions.c.aspect, aspect_versions.c.version)
    rows = connection.execute(_records(aspect_versions).where(columns.in_(keys)))
    return {(r.urn, r.aspect, r.version): r for r in map(AspectRecord.of, rows)}


def history(connection: Connection, urn: str) -> list[AspectRecord]:
    """Every version of every aspect of `urn`, oldest first."""
    rows = connection.execute(_records(aspect_versions).where(aspect_versions.c.urn == urn)
                              .order_by(aspect_versions.c.created_ms, aspect_versions.c.aspect,
                                        aspect_versions.c.version))
    return [AspectRecord.of(r) for r in rows]


def lock_current(connection: Connection, urn: Urn, aspect: str) -> AspectRecord | None:
    """The current version of an aspect, locked until the transaction ends (None: there is none yet; then the
    entity is created if missing and a placeholder row is locked, so writers of a new aspect take turns too).
    An aspect row implies its entity (a hard delete removes both), so a known aspect costs one statement."""
    row = _locked(connection, urn.text, aspect)
    if row is None:
        ensure_entity(connection, urn)
        connection.execute(_insert(connection)(aspects).values(
            urn=urn.text, aspect=aspect, version=0, value="{}", created_ms=0, actor="", run_id="", system=False,
        ).on_conflict_do_nothing())
        row = _locked(connection, urn.text, aspect)
    return AspectRecord.of(row) if row is not None and row.version > 0 else None


def _locked(connection: Connection, urn: str, aspect: str) -> Row[Any] | None:
    statement = _statements(connection.dialect.name)["locked"]
    return connection.execute(statement, {"b_urn": urn, "b_aspect": aspect}).first()


@dataclass(frozen=True)
class Condition:
    """`If-Version-Match: N` (`version`), or `If-None-Match: *` (`absent`)."""

    version: int | None = None
    absent: bool = False

    def check(self, urn: str, aspect: str, current: AspectRecord | None) -> None:
        have = current.version if current else None
        if self.absent and current is not None:
            raise PreconditionFailed(f"If-None-Match: * but {aspect} of {urn} exists (version {have})")
        if self.version is not None and have != self.version:
            now_is = f"version {have}" if have else "no version yet (use If-None-Match: * to create it)"
            raise PreconditionFailed(f"If-Version-Match: {self.version} but {aspect} of {urn} is at {now_is}")


NO_CONDITION = Condition()


def write_aspect(connection: Connection, urn: Urn, aspect: str,
                 value: Mapping[str, Any] | Callable[[AspectRecord | None], Mapping[str, Any]], *,
                 actor: str, run_id: str = DEFAULT_RUN_ID, system: bool = False,
                 condition: Condition = NO_CONDITION, guard: Callable[[AspectRecord | None], None] | None = None,
                 skip_unchanged: bool = False) -> AspectRecord | None:
    """Write a new version of an aspect (`value`, or `value(current)` computed under the lock, for patches)
    and rebuild the relationships it implies. None when `skip_unchanged` and the value equals the current
    one. Raises `PreconditionFailed` when `condition` does not hold; `guard(current)` may refuse."""
    current = lock_current(connection, urn, aspect)
    condition.check(urn.text, aspect, current)
    if guard is not None:
        guard(current)
    new_value = dict(value(current) if callable(value) else value)
    if skip_unchanged and current is not None and current.value == new_value:
        return None
    record = AspectRecord(urn.text, aspect, (current.version if current else 0) + 1, dumps_text(new_value),
                          now_millis(), actor, run_id, system)
    record.__dict__["value"] = new_value  # the cached_property's slot: no parse of what was just written
    row = {"value": record.text, "version": record.version, "created_ms": record.millis,
           "actor": actor, "run_id": run_id, "system": system}
    statements = _statements(connection.dialect.name)
    connection.execute(statements["update"], {"b_urn": urn.text, "b_aspect": aspect, **row})
    connection.execute(statements["insert"], {"urn": urn.text, "aspect": aspect, **row})
    if aspect in RELATING:  # other aspects never imply a relationship: nothing to delete or insert
        _relink(connection, urn.text, aspect, new_value)
    if aspect == "status":
        set_removed(connection, urn.text, bool(new_value.get("removed")))
    return record


def _relink(connection: Connection, urn: str, aspect: str, value: Mapping[str, Any]) -> None:
    connection.execute(_statements(connection.dialect.name)["unlink"], {"b_urn": urn, "b_aspect": aspect})
    edges = sorted(set(derived_relationships(aspect, value)))
    if edges:
        connection.execute(insert(relationships), [
            {"source": urn, "aspect": aspect, "relationship_type": kind, "destination": destination}
            for kind, destination in edges])


# -- relationships --------------------------------------------------------------------------------------

def related(connection: Connection, urn: str, types: Iterable[str] | None, direction: str, start: int,
            count: int, include_removed: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """(total, page of (relationship type, urn)) for OUTGOING (urn is the source) or INCOMING edges."""
    mine, other = ((relationships.c.source, relationships.c.destination) if direction == "OUTGOING"
                   else (relationships.c.destination, relationships.c.source))
    condition = [mine == urn]
    if types:
        condition.append(relationships.c.relationship_type.in_(sorted(set(types))))
    if not include_removed:
        hidden = select(entities.c.urn).where(entities.c.removed.is_(True))
        condition.append(other.not_in(hidden))
    where = and_(*condition)
    edges = select(relationships.c.relationship_type, other.label("other")).distinct().where(where)
    total = connection.execute(select(func.count()).select_from(edges.subquery())).scalar() or 0
    page = connection.execute(edges.order_by(relationships.c.relationship_type, other).offset(start).limit(count))
    return total, [(kind, found) for kind, found in page]
