"""The `Catalog`: an immutable snapshot of who owns and who may read each generated resource, for the data
plane's policy hook (which asks the catalog, never the database, on a request).

A snapshot is rebuilt when something changed: at once in the process that made the change, and in other
processes (uvicorn workers, replicas) when they notice that `drg_catalog_version` moved, which `catalog()`
checks at most once per `CHECK_SECONDS`. Every change to products, servings, grants, team keys or resource
ownership moves the counter in the same transaction (`bump`), so a snapshot never misses a committed change
for longer than that interval. Team keys are in the snapshot too, so checking a key costs no query."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from generator.codec import loads
from generator.models.engine import reading
from generator.products.tables import catalog_version, grants, products, resource_owners, servings, team_keys

CHECK_SECONDS = 1.0
DEFAULT_TENANCY = {"org": "org", "tenant": "tenantId", "tenantGroup": "tenantGroupId"}


@dataclass(frozen=True)
class Tenancy:
    """The columns of a multi-tenant serving's rows that carry the org, tenant and tenant group."""

    org: str = "org"
    tenant: str = "tenantId"
    tenant_group: str = "tenantGroupId"


@dataclass(frozen=True)
class ServingEntry:
    product: str
    name: str
    serving_type: str  # api, S3, kafka, snowTable
    access_restriction: str  # NONE, ORGANIZATION, TENANT
    tenancy: Tenancy | None  # None when access_restriction is NONE
    grantees: frozenset[str]
    resource: str | None = None  # the generated resource an api serving names


@dataclass(frozen=True)
class ResourceEntry:
    """A generated resource: its product (if any), the team that owns it, and the servings naming it."""

    name: str
    product: str | None
    owner: str | None
    servings: tuple[ServingEntry, ...] = ()

    @property
    def grantees(self) -> frozenset[str]:
        """Every team some serving of this resource is granted to."""
        return frozenset().union(*(s.grantees for s in self.servings))

    def servings_for(self, teams: Iterable[str]) -> tuple[ServingEntry, ...]:
        """The servings naming this resource that one of `teams` was granted."""
        wanted = frozenset(teams)
        return tuple(s for s in self.servings if s.grantees & wanted)


@dataclass(frozen=True)
class ProductEntry:
    name: str
    owner: str
    multi_tenant: bool
    servings: Mapping[str, ServingEntry]


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    team: str
    digest: str
    active: bool


@dataclass(frozen=True)
class Catalog:
    version: int
    products: Mapping[str, ProductEntry] = field(default_factory=dict)
    resources: Mapping[str, ResourceEntry] = field(default_factory=dict)
    keys: Mapping[str, KeyEntry] = field(default_factory=dict)

    def resource(self, name: str) -> ResourceEntry | None:
        """The resource's entry; None for a resource no product, team or serving claims."""
        return self.resources.get(name)

    def product(self, name: str) -> ProductEntry | None:
        return self.products.get(name)

    def products_owned_by(self, teams: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(teams)
        return frozenset(p.name for p in self.products.values() if p.owner in wanted)


def api_resource(body: Mapping[str, Any]) -> str | None:
    """The generated resource an api serving names: `schemaId` (patient) or the url's path (/patient)."""
    if body.get("schemaId"):
        return str(body["schemaId"]).lower()
    url = str(body.get("url") or "")
    path = url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url
    segment = path.strip("/").split("/", 1)[0]
    return segment.lower() or None


def tenancy_of(body: Mapping[str, Any]) -> Tenancy | None:
    if body.get("accessRestriction", "NONE") == "NONE":
        return None
    columns = {**DEFAULT_TENANCY, **(body.get("tenancyColumns") or {})}
    return Tenancy(columns["org"], columns["tenant"], columns["tenantGroup"])


def load(connection: Connection) -> Catalog:
    """Build a snapshot from the database (a handful of full-table reads: the control plane is small)."""
    version = connection.execute(select(catalog_version.c.version).where(catalog_version.c.id == 1)).scalar() or 0
    granted: dict[tuple[str, str], set[str]] = {}
    for product, serving, grantee in connection.execute(select(grants.c.product, grants.c.serving,
                                                               grants.c.grantee)):
        granted.setdefault((product, serving), set()).add(grantee)
    by_product: dict[str, dict[str, ServingEntry]] = {}
    for product, name, serving_type, body_text in connection.execute(
        select(servings.c.product, servings.c.name, servings.c.serving_type, servings.c.body)
    ):
        body = loads(body_text)
        by_product.setdefault(product, {})[name] = ServingEntry(
            product, name, serving_type, body.get("accessRestriction", "NONE"), tenancy_of(body),
            frozenset(granted.get((product, name), ())), api_resource(body) if serving_type == "api" else None)
    entries = {}
    for name, owner, body_text in connection.execute(select(products.c.name, products.c.owner, products.c.body)):
        entries[name] = ProductEntry(name, owner, bool(loads(body_text).get("multiTenant")),
                                     MappingProxyType(by_product.get(name, {})))
    owners = {r.resource: (r.product, r.team) for r in connection.execute(select(resource_owners))}
    keys = {r.key_id: KeyEntry(r.key_id, r.team, r.digest, r.active) for r in connection.execute(
        select(team_keys.c.key_id, team_keys.c.team, team_keys.c.digest, team_keys.c.active))}
    return Catalog(version, MappingProxyType(entries), MappingProxyType(_resources(entries, owners)),
                   MappingProxyType(keys))


def _resources(entries: Mapping[str, ProductEntry],
               owners: Mapping[str, tuple[str | None, str | None]]) -> dict[str, ResourceEntry]:
    """Resources by name: a generation names its product (or its team owns them); an api serving of a
    product also claims the resource it names when no generation put that resource in a product."""
    named: dict[str, list[ServingEntry]] = {}
    for product in sorted(entries.values(), key=lambda p: p.name):
        for serving in product.servings.values():
            if serving.resource:
                named.setdefault(serving.resource, []).append(serving)
    found = {}
    for resource in set(owners) | set(named):
        product, team = owners.get(resource, (None, None))
        if product is None and named.get(resource):
            product = named[resource][0].product
        owner = entries[product].owner if product in entries else team
        found[resource] = ResourceEntry(resource, product, owner, tuple(named.get(resource, ())))
    return found


def bump(connection: Connection) -> None:
    """Move the version counter, inside the transaction that changes something the catalog holds."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(catalog_version).values(id=1, version=0).on_conflict_do_nothing())
    connection.execute(update(catalog_version).where(catalog_version.c.id == 1)
                       .values(version=catalog_version.c.version + 1))


class CatalogCache:
    """One engine's current snapshot; asks the database whether it is stale at most once per interval."""

    def __init__(self, engine: Engine, interval: float = CHECK_SECONDS) -> None:
        self.engine, self.interval = engine, interval
        self._lock = threading.Lock()
        self._snapshot: Catalog | None = None
        self._checked = 0.0

    def get(self) -> Catalog:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - self._checked < self.interval:
            return snapshot
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._checked < self.interval:
                return self._snapshot
            version = reading(self.engine, _version)
            if self._snapshot is None or version != self._snapshot.version:
                self._snapshot = reading(self.engine, load)
            self._checked = time.monotonic()
            return self._snapshot

    def invalidate(self) -> None:
        """Check the database at the next `get` (this process just changed something)."""
        self._checked = 0.0


def _version(connection: Connection) -> int:
    return connection.execute(select(catalog_version.c.version).where(catalog_version.c.id == 1)).scalar() or 0


_caches: WeakKeyDictionary[Engine, CatalogCache] = WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(engine: Engine) -> CatalogCache:
    with _caches_lock:
        found = _caches.get(engine)
        if found is None:
            found = _caches[engine] = CatalogCache(engine)
        return found


def catalog(engine: Engine) -> Catalog:
    """The current snapshot for `engine`'s database: in memory, at most `CHECK_SECONDS` behind other
    processes' changes and never behind this process's own."""
    return cache_for(engine).get()


def invalidate(engine: Engine) -> None:
    cache_for(engine).invalidate()
