"""Reads and the version writes: the seed's objects built from the `drg_lc_*` rows, and the data product
versions (`PUT /data-products/{name}/versions/{version}`). State changes live in engine.py."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update

from generator.identity import Principal
from generator.lifecycle.descriptor import check_name, parse_lifecycle
from generator.lifecycle.problems import OdmProblem, not_found
from generator.lifecycle.tables import activities, iso, now, stages, tasks, versions
from generator.models.engine import for_writes, reading
from generator.products.tables import products


def activity_view(row: Row) -> dict[str, Any]:
    return {"id": row.id, "dataProductId": row.product, "dataProductVersion": row.version, "stage": row.stage,
            "status": row.status, "results": row.results, "errors": row.errors, "createdAt": iso(row.created_at),
            "startedAt": iso(row.started_at), "finishedAt": iso(row.finished_at)}


def task_view(row: Row) -> dict[str, Any]:
    return {"id": row.id, "activityId": row.activity_id, "executorRef": row.executor, "template": row.template,
            "configurations": row.configurations, "status": row.status, "results": row.results,
            "errors": row.errors, "createdAt": iso(row.created_at), "startedAt": iso(row.started_at),
            "finishedAt": iso(row.finished_at)}


def stage_view(row: Row) -> dict[str, Any]:
    return {"id": row.id, "dataProductId": row.product, "dataProductVersion": row.version, "stage": row.stage,
            "activityId": row.activity_id, "results": row.results, "startedAt": iso(row.started_at),
            "finishedAt": iso(row.finished_at)}


def version_view(row: Row) -> dict[str, Any]:
    return {"dataProductId": row.product, "version": row.version, "descriptor": row.descriptor,
            "immutable": row.frozen, "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at)}


def require_caller(principal: Principal) -> None:
    if principal.kind == "anonymous":
        raise OdmProblem(401, 40101, "Authentication required", "This route needs an authenticated caller")


def require_owner(connection: Connection, principal: Principal, product: str) -> str:
    """The product's owner team, once the caller may change it: its owner team or an admin, not read-only."""
    require_caller(principal)
    owner = connection.execute(select(products.c.owner).where(products.c.name == product)).scalar()
    if owner is None:
        raise not_found(40403, "Data product not found", f"No data product is named {product!r}")
    if principal.read_only:
        raise OdmProblem(403, 40301, "Forbidden", f"{principal.subject} is a read-only team key; it cannot "
                                                  "change anything")
    if not (principal.admin or principal.member_of(owner)):
        raise OdmProblem(403, 40301, "Forbidden", f"Only team {owner} (the owner of data product {product!r}) or an "
                                                  f"admin may do this; {principal.subject} is not a member of {owner}")
    return owner


def put_version(engine: Engine, principal: Principal, product: str, version: str, descriptor: Any,
                executors: Collection[str]) -> tuple[dict[str, Any], bool]:
    """Register or replace a version; (its view, created). 409 (40903) once an activity ran on it."""
    check_name(product, "data product"), check_name(version, "version")
    with for_writes(engine).begin() as connection:
        require_owner(connection, principal, product)
        parse_lifecycle(descriptor, executors)
        key = (versions.c.product == product) & (versions.c.version == version)
        found = connection.execute(select(versions.c.frozen).where(key).with_for_update()).first()
        if found is not None and found.frozen:
            raise OdmProblem(409, 40903, "Data product version is immutable",
                             f"Version {version} of data product {product!r} cannot change: an activity ran on it; "
                             "register a new version")
        if found is None:
            connection.execute(insert(versions).values(product=product, version=version, descriptor=descriptor))
        else:
            connection.execute(update(versions).where(key).values(descriptor=descriptor, updated_at=now()))
        row = connection.execute(select(versions).where(key)).one()
    return version_view(row), found is None


def get_version(engine: Engine, product: str, version: str) -> dict[str, Any]:
    row = reading(engine, lambda c: c.execute(select(versions).where(
        (versions.c.product == product) & (versions.c.version == version))).first())
    if row is None:
        raise not_found(40404, "Data product version not found",
                        f"Data product {product!r} has no version {version!r}")
    return version_view(row)


def list_versions(engine: Engine, product: str) -> list[dict[str, Any]]:
    rows = reading(engine, lambda c: c.execute(select(versions).where(versions.c.product == product)
                                               .order_by(versions.c.created_at, versions.c.version)).all())
    return [version_view(r) for r in rows]


def list_activities(engine: Engine, filters: dict[str, str]) -> list[dict[str, Any]]:
    columns = {"dataProductId": activities.c.product, "dataProductVersion": activities.c.version,
               "stage": activities.c.stage, "status": activities.c.status}
    query = select(activities).order_by(activities.c.id)
    for key, value in filters.items():
        query = query.where(columns[key] == value)
    return [activity_view(r) for r in reading(engine, lambda c: c.execute(query).all())]


def get_activity(engine: Engine, ident: int) -> dict[str, Any]:
    row = reading(engine, lambda c: c.execute(select(activities).where(activities.c.id == ident)).first())
    if row is None:
        raise not_found(40401, "Activity not found", f"Activity with id equals to [{ident}] does not exist")
    return activity_view(row)


def list_tasks(engine: Engine, filters: dict[str, Any]) -> list[dict[str, Any]]:
    columns = {"activityId": tasks.c.activity_id, "executor": tasks.c.executor, "status": tasks.c.status}
    query = select(tasks).order_by(tasks.c.id)
    for key, value in filters.items():
        query = query.where(columns[key] == value)
    return [task_view(r) for r in reading(engine, lambda c: c.execute(query).all())]


def get_task(engine: Engine, ident: int) -> dict[str, Any]:
    row = reading(engine, lambda c: c.execute(select(tasks).where(tasks.c.id == ident)).first())
    if row is None:
        raise not_found(40402, "Task not found", f"Task with id equals to [{ident}] does not exist")
    return task_view(row)


def lifecycles(engine: Engine, product: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
    query = select(stages).order_by(stages.c.id)
    if product is not None:
        query = query.where(stages.c.product == product)
    if version is not None:
        query = query.where(stages.c.version == version)
    return [stage_view(r) for r in reading(engine, lambda c: c.execute(query).all())]


def current_stage(engine: Engine, product: str, version: str) -> dict[str, Any]:
    query = (select(stages).where((stages.c.product == product) & (stages.c.version == version)
                                  & stages.c.finished_at.is_(None)).order_by(stages.c.id.desc()).limit(1))
    row = reading(engine, lambda c: c.execute(query).first())
    if row is None:
        raise not_found(40405, "Lifecycle not found",
                        f"Version {version!r} of data product {product!r} has not reached any stage")
    return stage_view(row)
