"""The audit log: every change to a product, its parts, its grants, a team's keys and resource ownership,
written in the transaction that makes the change (a change is never committed unlogged) and read newest
first. `before`/`after` are the stored bodies as JSON text; a key's secret or digest never appears."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Engine, false, func, insert, or_, select

from generator.codec import dumps_text, loads
from generator.identity import Principal
from generator.models.engine import reading
from generator.products.tables import audit_log, iso


def record(connection: Connection, principal: Principal, action: str, entity: str, *, product: str | None = None,
           team: str | None = None, target: str | None = None, before: Any = None, after: Any = None) -> None:
    connection.execute(insert(audit_log).values(
        actor=principal.subject, action=action, entity=entity, product=product, team=team, target=target,
        before=None if before is None else dumps_text(before), after=None if after is None else dumps_text(after),
    ))


def entries(engine: Engine, *, product: str | None = None, visible_products: Collection[str] | None = None,
            visible_teams: Collection[str] = (), offset: int = 0, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """One page of entries, newest first, and how many there are. `visible_products`/`visible_teams` narrow
    the log to what a non-admin may see (None: everything)."""
    where = []
    if product is not None:
        where.append(audit_log.c.product == product)
    if visible_products is not None:
        where.append(or_(audit_log.c.product.in_(list(visible_products)) if visible_products else false(),
                         audit_log.c.team.in_(list(visible_teams)) if visible_teams else false()))
    page = select(audit_log).where(*where).order_by(audit_log.c.id.desc()).offset(offset).limit(limit)
    total = select(func.count()).select_from(audit_log).where(*where)

    def run(connection: Connection) -> tuple[list[dict[str, Any]], int]:
        return [_entry(row._mapping) for row in connection.execute(page)], connection.execute(total).scalar_one()

    return reading(engine, run)


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"], "at": iso(row["at"]), "actor": row["actor"], "action": row["action"],
        "entity": row["entity"], "product": row["product"], "team": row["team"], "target": row["target"],
        "before": None if row["before"] is None else loads(row["before"]),
        "after": None if row["after"] is None else loads(row["after"]),
    }
