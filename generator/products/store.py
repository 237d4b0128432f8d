"""Data products in the database: reads build the seed's DataProduct object; every write runs in one
transaction with its audit entry and a catalog version bump, then refreshes this process's catalog.

Functions take the engine and the acting `Principal`; authorisation is the caller's (handlers') job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update

from generator.codec import dumps_text, loads
from generator.errors import not_found
from generator.identity import Principal
from generator.models.engine import for_writes, reading
from generator.products import audit
from generator.products.catalog import bump, invalidate
from generator.products.tables import grants, iso, pipelines, products, servings, sources

PARTS: dict[str, Table] = {"source": sources, "pipeline": pipelines, "serving": servings}


@contextmanager
def changing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that moves the catalog version; the local catalog is refreshed after commit."""
    with for_writes(engine).begin() as connection:
        yield connection
        bump(connection)
    invalidate(engine)


def owner_of(engine: Engine, name: str) -> str:
    """The product's owner team; 404 when there is no such product."""
    owner = reading(engine, lambda c: c.execute(select(products.c.owner).where(products.c.name == name)).scalar())
    if owner is None:
        raise not_found(f"No data product is named {name!r}")
    return owner


def product_names(engine: Engine) -> list[str]:
    return reading(engine, lambda c: list(c.execute(select(products.c.name).order_by(products.c.name)).scalars()))


def view(engine: Engine, name: str) -> dict[str, Any]:
    """The seed's DataProduct object; 404 when absent."""
    found = reading(engine, lambda c: _view(c, name))
    if found is None:
        raise not_found(f"No data product is named {name!r}")
    return found


def views(engine: Engine) -> list[dict[str, Any]]:
    def run(connection: Connection) -> list[dict[str, Any]]:
        names = connection.execute(select(products.c.name).order_by(products.c.name)).scalars().all()
        return [v for n in names if (v := _view(connection, n)) is not None]

    return reading(engine, run)


def _view(connection: Connection, name: str) -> dict[str, Any] | None:
    row = connection.execute(select(products).where(products.c.name == name)).first()
    if row is None:
        return None
    parts = {kind: {r.name: {**loads(r.body), "created": iso(r.created_at)} for r in connection.execute(
        select(table).where(table.c.product == name).order_by(table.c.name))} for kind, table in PARTS.items()}
    access: dict[str, list[str]] = {}
    for grantee, serving in connection.execute(select(grants.c.grantee, grants.c.serving)
                                               .where(grants.c.product == name)
                                               .order_by(grants.c.grantee, grants.c.serving)):
        access.setdefault(grantee, []).append(serving)
    return {"dataProductName": name, "owner": row.owner, **loads(row.body), "sources": parts["source"],
            "pipelines": list(parts["pipeline"].values()), "servings": parts["serving"], "access": access,
            "created": iso(row.created_at), "updated": iso(row.updated_at)}


def _product_row(connection: Connection, name: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(products.c.owner, products.c.body).where(products.c.name == name)
    row = connection.execute(query.with_for_update() if lock else query).first()
    return None if row is None else {"owner": row.owner, **loads(row.body)}


def put_product(engine: Engine, principal: Principal, name: str, body: dict[str, Any],
                decide_owner: Callable[[dict[str, Any] | None], str]) -> bool:
    """Create or replace a product's own fields; True when created. `decide_owner(before)` runs inside the
    transaction, sees the product as stored (None when new), may refuse, and returns the owner team."""
    with changing(engine) as connection:
        before = _product_row(connection, name, lock=True)
        owner = decide_owner(before)
        after = {"owner": owner, **body}
        if before is None:
            connection.execute(insert(products).values(name=name, owner=owner, body=dumps_text(body)))
        else:
            connection.execute(update(products).where(products.c.name == name).values(
                owner=owner, body=dumps_text(body), updated_at=datetime.now(UTC)))
        audit.record(connection, principal, "create" if before is None else "update", "product", product=name,
                     target=name, before=before, after=after)
    return before is None


def put_part(engine: Engine, principal: Principal, kind: str, product: str, name: str, body: dict[str, Any],
             **columns: Any) -> bool:
    """Add or replace a source, pipeline or serving; True when added."""
    table = PARTS[kind]
    key = (table.c.product == product) & (table.c.name == name)
    with changing(engine) as connection:
        old = connection.execute(select(table.c.body).where(key)).scalar()
        if old is None:
            connection.execute(insert(table).values(product=product, name=name, body=dumps_text(body), **columns))
        else:
            connection.execute(update(table).where(key).values(body=dumps_text(body), **columns))
        audit.record(connection, principal, "create" if old is None else "update", kind, product=product,
                     target=name, before=None if old is None else loads(old), after=body)
    return old is None


def serving_names(engine: Engine, product: str) -> set[str]:
    return set(reading(engine, lambda c: c.execute(select(servings.c.name).where(servings.c.product == product))
                       .scalars().all()))


def granted(engine: Engine, product: str, grantee: str) -> set[str]:
    query = select(grants.c.serving).where(grants.c.product == product, grants.c.grantee == grantee)
    return set(reading(engine, lambda c: c.execute(query).scalars().all()))


def grant(engine: Engine, principal: Principal, product: str, grantee: str, names: list[str]) -> None:
    with changing(engine) as connection:
        have = set(connection.execute(select(grants.c.serving).where(
            grants.c.product == product, grants.c.grantee == grantee)).scalars())
        new = [n for n in dict.fromkeys(names) if n not in have]
        if new:
            connection.execute(insert(grants), [{"product": product, "serving": n, "grantee": grantee,
                                                 "granted_by": principal.subject} for n in new])
        audit.record(connection, principal, "grant", "access", product=product, target=grantee,
                     before={"servings": sorted(have)}, after={"servings": sorted(have | set(new))})


def revoke(engine: Engine, principal: Principal, product: str, grantee: str, names: list[str]) -> None:
    with changing(engine) as connection:
        have = set(connection.execute(select(grants.c.serving).where(
            grants.c.product == product, grants.c.grantee == grantee)).scalars())
        connection.execute(delete(grants).where(grants.c.product == product, grants.c.grantee == grantee,
                                                grants.c.serving.in_(names)))
        audit.record(connection, principal, "revoke", "access", product=product, target=grantee,
                     before={"servings": sorted(have)}, after={"servings": sorted(have - set(names))})
