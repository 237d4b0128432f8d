"""Admin handlers, bound to the runtime. Errors are raised as problems; Connexion renders them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connexion import context
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from generator.api.openapi import build_document, served_path
from generator.codec import dumps_text, loads
from generator.config import Settings
from generator.datasets.links import sensitive_field_warnings
from generator.errors import InvalidPayload, Issue, Problem, bad_request, not_found
from generator.identity import Principal, principal_of
from generator.metadata import dataset_urns
from generator.models import ddl
from generator.models.ddl import Change, EvolutionRefused, SchemaConflict
from generator.models.engine import for_writes
from generator.models.evolution import refused
from generator.models.tables import tableschemas
from generator.payload.parse import resource_from_table_schema
from generator.payload.specs import Generation, OperationKind, OperationSpec
from generator.pointers import child
from generator.products import check_generation, invalidate, record_generation_in
from generator.runtime import Outcome, Runtime

# The reference's routes for each stored table schema, by the api method that enables them: GET /t and
# GET /t/{id}, and the exact-match query POST /t/query, which reads, so `get` enables it too.
HELPER_METHODS: dict[str, tuple[tuple[OperationKind, str], ...]] = {
    "get": (("list", "get"), ("read", "get"), ("query", "post")),
    "post": (("create", "post"),), "put": (("replace", "put"),), "patch": (("update", "patch"),),
    "delete": (("delete", "delete"),),
}  # fmt: skip


JSON = {"Content-Type": "application/json"}
Reply = tuple[Any, int, dict[str, str]]


def reply(body: Any, status: int = 200) -> Reply:
    """Name the media type: the admin document lists problem+json too, so Connexion will not guess."""
    return body, status, JSON


def summary(generation: Generation) -> dict[str, Any]:
    return {
        "digest": generation.digest,
        "tables": [r.name for r in generation.resources] + [p.table_name for p in generation.many_to_many],
        "routes": [f"{op.method.upper()} {served_path(op)}" for op in generation.operations],
        "warnings": list(generation.warnings),
        "protected_fields": [{"table": r.name, "field": f.name, "searchable": f.searchable}
                             for r in generation.resources for f in r.protected_fields],
    }


class AdminHandlers:
    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.runtime, self.settings = runtime, settings

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    def generate(self, body: dict[str, Any]) -> Reply:
        principal = principal_of(context.scope)
        claim = check_generation(self.engine, principal, body)  # who may generate into which data product

        def record(connection: Connection, generation: Generation) -> None:
            record_generation_in(connection, principal, claim, generation.resources, digest=generation.digest)
            self.runtime.hooks.hook.drg_generation_recording(  # the metadata graph's datasets, among others
                connection=connection, generation=generation, principal=principal)

        with _as_problems():
            outcome: Outcome = self.runtime.generate(body, record, created_by=_recorded_subject(principal))
        invalidate(self.engine)  # this process sees the new ownership at once; others within a second
        message = "Generation applied and serving" if outcome.changed else "This payload is already applied"
        body_out = {"message": message, **summary(outcome.generation), "created_tables": outcome.created_tables,
                    "operations": _operations(outcome.changes),
                    "seconds": round(outcome.seconds, 4), "datasets": dataset_urns(outcome.generation, self.settings)}
        body_out["warnings"] = [*body_out["warnings"], *outcome.warnings,
                                *sensitive_field_warnings(self.engine, outcome.generation)]  # pii/hipaa datasets
        if outcome.changed:
            body_out.update(self._generation_record())
        return reply(body_out, 201 if outcome.changed else 200)

    def plan(self, body: dict[str, Any]) -> Reply:
        """`POST /generator/plan`: the operations a payload would apply; nothing is written."""
        check_generation(self.engine, principal_of(context.scope), body)  # the same right as applying it
        with _as_problems():
            generation, changes = self.runtime.plan(body)
            if refusing := refused(changes, generation.allow_destructive):
                raise EvolutionRefused(refusing, changes)
        message = f"The payload would apply {len(changes)} operation(s)" if changes else "The payload changes nothing"
        return reply({"message": message, "digest": generation.digest, "operations": _operations(changes),
                      "destructive": any(c.destructive for c in changes)})

    def current_generation(self) -> Reply:
        return reply({**self._generation_record(), **summary(self.runtime.current.generation)})

    def history(self, offset: int = 0, limit: int = 50) -> Reply:
        """`GET /generator/history`: recorded generations, newest first, without their payloads."""
        page, total = ddl.history(self.engine, offset=offset, limit=limit)
        current = self.runtime.served[0]
        return reply({"generations": [{**g.as_json(), "current": g.id == current} for g in page],
                      "total": total, "offset": offset, "limit": limit})

    def _generation_record(self) -> dict[str, Any]:
        """The served generation's row of drg_generations: number, digest, when and by whom (None before any)."""
        served_id = self.runtime.served[0]
        found = ddl.described(self.engine, served_id) if served_id else None
        if found is None:
            return {"version": None, "hash": None, "created_at": None, "created_by": None}
        return found.as_json()

    def health(self) -> Reply:
        return reply({
            "status": "ok",
            "mode": self.settings.app_env,
            "authentication": "bearer tokens" if self.settings.production else "off (development mode)",
            "generation": self.runtime.current.generation.digest or None,
        })

    # -- the reference's table-schema helper routes ---------------------------------------------------

    def _stored(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(tableschemas).order_by(tableschemas.c.name)).all()
        return {name: loads(body) for name, body in rows}

    def list_tableschemas(self) -> Reply:
        return reply({"tableschemas": self._stored()})

    def put_tableschema(self, name: str, body: dict[str, Any]) -> Reply:
        datastore = body["tableschema"]["datastore"]
        try:
            resource_from_table_schema(datastore["tablename"], datastore["schema"], "/tableschema/datastore/schema")
        except InvalidPayload as exc:
            raise bad_request("The table schema is invalid", exc.issues) from None
        with for_writes(self.engine).begin() as connection:
            changed = connection.execute(
                update(tableschemas).where(tableschemas.c.name == name).values(body=dumps_text(body))
            ).rowcount
            if not changed:
                connection.execute(insert(tableschemas).values(name=name, body=dumps_text(body)))
        return reply({"message": f"Table schema {name!r} stored", "name": name}, 200 if changed else 201)

    def get_tableschema(self, name: str) -> Reply:
        with self.engine.connect() as connection:
            body = connection.execute(select(tableschemas.c.body).where(tableschemas.c.name == name)).scalar()
        if body is None:
            raise not_found(f"No table schema is stored as {name!r}")
        return reply(loads(body))

    def delete_tableschema(self, name: str) -> tuple[str, int]:
        with for_writes(self.engine).begin() as connection:
            deleted = connection.execute(delete(tableschemas).where(tableschemas.c.name == name)).rowcount
        if not deleted:
            raise not_found(f"No table schema is stored as {name!r}")
        return "", 204

    def swagger_from_tableschemas(self) -> Reply:
        stored = self._stored()
        resources, operations = [], []
        for key, body in stored.items():
            datastore, api = body["tableschema"]["datastore"], body["tableschema"].get("api") or {}
            try:
                resource = resource_from_table_schema(datastore["tablename"], datastore["schema"])
            except InvalidPayload as exc:
                where = child("/tableschema", key)
                raise bad_request(f"Stored table schema {key!r} is invalid",
                                  [Issue(where + i.pointer, i.message) for i in exc.issues]) from None
            resources.append(resource)
            for enabling in _enabled_methods(api):
                operations += [OperationSpec(resource.name, kind, method, f"/{resource.name}")
                               for kind, method in HELPER_METHODS[enabling]]  # fmt: skip
        generation = Generation(resources=tuple(resources), many_to_many=(), operations=tuple(operations),
                                title="Data Resource API", description="Generated from the stored table schemas",
                                version="1.0.0", digest="")
        return reply(build_document(generation, default_limit=self.settings.default_page_size,
                                    max_limit=self.settings.max_page_size, auth_required=self.settings.production))


def _recorded_subject(principal: Principal) -> str | None:
    """Who posted a generation, as drg_generations keeps it: None in development mode (no one signed in)."""
    return None if principal.kind in ("anonymous", "developer") else principal.subject


def _operations(changes: list[Change]) -> list[dict[str, Any]]:
    return [c.as_json() for c in changes]


@contextmanager
def _as_problems() -> Iterator[None]:
    """The errors of applying or planning a payload, as the problems `POST /generator` documents."""
    try:
        yield
    except InvalidPayload as exc:
        raise Problem(400, "Invalid generation payload",
                      f"The payload has {len(exc.issues)} problem(s); nothing was created or saved",
                      errors=exc.issues) from None
    except EvolutionRefused as exc:
        if exc.blocked:
            detail = ("The payload changes existing tables in ways their data or schema evolution cannot allow, "
                      "even with allow_destructive (see `differences`); nothing was changed")
        else:
            detail = ("The payload changes existing tables destructively (see `differences`): post it again with "
                      '"allow_destructive": true at its top level to apply them; nothing was changed')
        raise Problem(409, "The payload changes existing tables", detail,
                      extra={"differences": exc.differences, "operations": _operations(exc.planned)}) from None
    except SchemaConflict as exc:
        raise Problem(409, "The database does not match the payload",
                      "Existing tables differ from the payload; nothing was changed",
                      extra={"differences": exc.differences}) from None
    except OperationalError as exc:
        if (getattr(exc.orig, "sqlstate", None) or "").startswith("54"):  # program limit exceeded: the payload's
            reason = str(exc.orig).splitlines()[0]  # size (too many columns once blind indexes are added, ...)
            raise Problem(400, "The database refused the schema", f"{reason}; nothing was changed") from None
        if getattr(exc.orig, "sqlstate", None) == "55P03":
            detail = ("The generation's DDL waited longer than DDL_LOCK_TIMEOUT_MS for other transactions; "
                      "nothing was changed, try again")
        elif _sqlite_busy(exc.orig):
            detail = ("The generation waited longer than the database's busy timeout for another writer (SQLite "
                      "allows one at a time); nothing was changed, try again")
        else:
            raise
        raise Problem(503, "Database busy", detail, headers={"Retry-After": "5"}) from None
    except (IntegrityError, DataError) as exc:  # the values refused what the payload asks; any other database
        reason = str(exc.orig).splitlines()[0] if exc.orig else "unknown"  # error is ours: a 500, logged
        raise Problem(400, "The database refused the schema", f"{reason}; nothing was changed") from None


SQLITE_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _sqlite_busy(error: BaseException | None) -> bool:
    """SQLite's "database is locked" (BEGIN IMMEDIATE waited its busy timeout behind another writer): it has
    no SQLSTATE, but a primary result code (the low byte of the extended one) in Python 3.11+."""
    if not isinstance(error, sqlite3.OperationalError):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in SQLITE_BUSY_CODES
    return "database is locked" in str(error) or "database table is locked" in str(error)


def _enabled_methods(api: dict[str, Any]) -> list[str]:
    """`methods: [{"get": {"enabled": true}, ...}]`; a schema with no api block gets every method."""
    listed = [m for entry in api.get("methods") or [] if isinstance(entry, dict) for m in entry.items()]
    if not listed:
        return list(HELPER_METHODS)
    return [name for name, options in listed
            if name in HELPER_METHODS and (not isinstance(options, dict) or options.get("enabled", True))]
