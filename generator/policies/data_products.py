"""The data-product access policy, as a default plugin of the hook layer.

Every generated resource belongs to a data product (or, outside any, to the team that generated it):
- administrators may do anything;
- the owner team reads and writes;
- a team granted a serving that names the resource reads it;
- everyone else gets 403 with the reason. (403, not 404: which resources exist is public in /openapi.json.)

Multi-tenant servings limit rows. `ORGANIZATION`: a caller sees rows whose org column is in its `orgs`.
`TENANT`: also the row's tenant must be in its `tenantIds`, or its tenant group in its `tenantGroupIds`; rows
whose tenant is `unrestricted` are visible to every member of their org. A grantee is bound by the most
permissive serving it was granted; members of the owner team, in a product marked `multiTenant`, by the
strictest serving naming the resource. The same bounds keep writers from creating or moving rows outside
their orgs and tenants (`drg_check_write`). Decisions come from a `Catalog` snapshot (generator/products),
never from a query per request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, false, or_

from generator.hooks import Decision, hookimpl
from generator.identity import Principal
from generator.products.catalog import Catalog, ResourceEntry, ServingEntry

UNRESTRICTED_TENANT = "unrestricted"
STRICTNESS = {"NONE": 0, "ORGANIZATION": 1, "TENANT": 2}


class DataProductPolicy:
    def __init__(self, catalog: Callable[[], Catalog]) -> None:
        self.catalog = catalog

    @hookimpl
    def drg_authorize(self, principal: Principal, resource: str, action: str) -> Decision:
        if principal.admin:
            return Decision.allow(f"{principal.subject} is an administrator")
        entry = self.catalog().resource(resource)
        if entry is None or entry.owner is None:
            return Decision.deny(f"{resource} belongs to no data product or team; only administrators may use it")
        what = f"data product {entry.product}" if entry.product else f"team {entry.owner}'s resources"
        if principal.member_of(entry.owner):
            return Decision.allow(f"{principal.subject} is in team {entry.owner}, which owns {what}")
        granted = entry.servings_for(principal.teams)
        if granted and action == "read":
            serving = granted[0]
            return Decision.allow(f"a team of {principal.subject} was granted the serving {serving.name} of data "
                                  f"product {serving.product}")
        if granted:
            return Decision.deny(f"{principal.subject} may only read {resource} (a granted serving); writes are for "
                                 f"team {entry.owner}, which owns {what}")
        return Decision.deny(f"{resource} belongs to {what}, owned by team {entry.owner}; {principal.subject} is "
                             "not in that team and no serving of it was granted to its teams")

    @hookimpl
    def drg_row_filter(self, principal: Principal, resource: str, table: Table) -> ColumnElement[bool] | None:
        serving = self._binding(principal, resource)
        if serving is None:
            return None
        return _rows_of(serving, principal.orgs, principal.tenant_ids, principal.tenant_group_ids, table)

    @hookimpl
    def drg_check_write(self, principal: Principal, resource: str, values: dict[str, Any]) -> Decision | None:
        serving = self._binding(principal, resource)
        if serving is None or serving.tenancy is None:
            return None
        problem = _outside(serving, principal, values)
        return None if problem is None else Decision.deny(problem)

    def _binding(self, principal: Principal, resource: str) -> ServingEntry | None:
        """The multi-tenant serving that bounds `principal` on `resource`, or None when nothing does."""
        if principal.admin:
            return None
        entry = self.catalog().resource(resource)
        if entry is None:
            return None
        return _bounding(entry, principal, self.catalog())


def _bounding(entry: ResourceEntry, principal: Principal, catalog: Catalog) -> ServingEntry | None:
    if principal.member_of(entry.owner):
        product = catalog.product(entry.product) if entry.product else None
        if product is None or not product.multi_tenant or not entry.servings:
            return None
        strictest = max(entry.servings, key=lambda s: STRICTNESS.get(s.access_restriction, 0))
        return strictest if strictest.tenancy is not None else None
    granted = entry.servings_for(principal.teams)
    if not granted:
        return None
    loosest = min(granted, key=lambda s: STRICTNESS.get(s.access_restriction, 0))
    return loosest if loosest.tenancy is not None else None


@lru_cache(maxsize=4096)
def _rows_of(serving: ServingEntry, orgs: frozenset[str], tenant_ids: frozenset[str],
             tenant_group_ids: frozenset[str], table: Table) -> ColumnElement[bool]:
    """The condition for one serving and one set of claims, built once: a client sends the same token on
    every request, and building the expression costs about as much as the rest of a list request."""
    tenancy = serving.tenancy
    assert tenancy is not None
    columns = table.c
    if tenancy.org not in columns or not orgs:
        return false()  # a serving naming no such column, or a caller in no org, reaches no row
    in_org = columns[tenancy.org].in_(sorted(orgs))
    if serving.access_restriction != "TENANT":
        return in_org
    reachable = []
    if tenancy.tenant in columns:
        tenant = columns[tenancy.tenant]
        reachable.append(tenant == UNRESTRICTED_TENANT)
        if tenant_ids:
            reachable.append(tenant.in_(sorted(tenant_ids)))
    if tenancy.tenant_group in columns and tenant_group_ids:
        reachable.append(columns[tenancy.tenant_group].in_(sorted(tenant_group_ids)))
    return and_(in_org, or_(*reachable)) if reachable else false()


def _outside(serving: ServingEntry, principal: Principal, values: Mapping[str, Any]) -> str | None:
    """Why a row with `values` would lie outside what `principal` may reach (None: it would not). Absent
    columns are not judged: an update leaves them as they are, and the row filter bounds which rows it hits."""
    tenancy = serving.tenancy
    assert tenancy is not None
    if tenancy.org in values and values[tenancy.org] not in principal.orgs:
        return (f"{tenancy.org} {values[tenancy.org]!r} is not one of your organisations "
                f"({', '.join(sorted(principal.orgs)) or 'none'}); serving {serving.name} is multi-tenant")
    if serving.access_restriction != "TENANT" or tenancy.tenant not in values:
        return None
    tenant = values[tenancy.tenant]
    group = values.get(tenancy.tenant_group)
    if tenant == UNRESTRICTED_TENANT or tenant in principal.tenant_ids or (group is not None and
                                                                          group in principal.tenant_group_ids):
        return None
    return (f"{tenancy.tenant} {tenant!r} is not one of your tenants, and its tenant group is not one of yours; "
            f"serving {serving.name} is multi-tenant by tenant")
