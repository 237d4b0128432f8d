"""Authorization of data-plane requests: the hooks decide, the plans apply.

Every endpoint is wrapped, once per generation, in a guard for its resource and action ("read" or
"write"). Per request the guard asks `drg_authorize` (first answer wins; with no answer only
administrators pass), refuses writes by read-only principals (team API keys), and fills the plans' slots:
the `drg_row_filter` conditions of the route's rows (every plugin's, ANDed), lazily the filters of related
tables for embeds, and a `drg_check_write` callable that keeps written values inside what the caller may
reach. A denial is the decision's status (403, or 404 where existence must not leak) with its reason."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pluggy
from sqlalchemy import ColumnElement, MetaData, and_, false
from starlette.requests import Request

from generator.api.endpoints import CHECK_WRITE_KEY, EMBED_FILTERS_KEY, ROW_FILTER_KEY
from generator.api.routes import Endpoint
from generator.errors import Problem
from generator.hooks import Decision
from generator.identity import Principal, principal_of

READS = frozenset({"list", "read", "query", "related_list"})
TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def action_of(kind: str) -> str:
    return "read" if kind in READS else "write"


class Guard:
    def __init__(self, hooks: pluggy.PluginManager, metadata: MetaData) -> None:
        self.hooks, self.metadata = hooks, metadata

    def wrap(self, endpoint: Endpoint, resource: str, action: str, rows_of: str | None = None) -> Endpoint:
        """`endpoint` behind the decision for (`resource`, `action`); `rows_of` names the table whose rows it
        returns when that is not `resource` (a many-to-many list returns the child's rows)."""

        async def guarded(request: Request, params: Sequence[str]) -> Any:
            self.admit(request, resource, action, rows_of or resource)
            return await endpoint(request, params)

        return guarded

    def admit(self, request: Request, resource: str, action: str, rows_of: str) -> Principal:
        principal = principal_of(request.scope)
        decision = self.decide(principal, resource, action)
        if rows_of != resource and decision.allowed:
            decision = self.decide(principal, rows_of, "read")
        if not decision.allowed:
            raise Problem(decision.status, TITLES.get(decision.status, "Forbidden"), decision.reason)
        request.scope[ROW_FILTER_KEY] = self.row_filter(principal, rows_of)
        request.scope[EMBED_FILTERS_KEY] = RelatedFilters(self, principal)
        if action == "write":
            request.scope[CHECK_WRITE_KEY] = lambda values: self.check_write(principal, resource, values)
        return principal

    def decide(self, principal: Principal, resource: str, action: str) -> Decision:
        decision = self.hooks.hook.drg_authorize(principal=principal, resource=resource, action=action)
        if decision is None:
            decision = (Decision.allow("administrator") if principal.admin else
                        Decision.deny(f"No policy grants {principal.subject} access to {resource}; only "
                                      "administrators may use it"))
        if decision.allowed and action == "write" and principal.read_only:
            return Decision.deny(f"{principal.subject} is a read-only credential (team API keys read only)")
        return decision

    def row_filter(self, principal: Principal, resource: str) -> ColumnElement[bool] | None:
        table = self.metadata.tables.get(resource)
        if table is None:
            return None
        found = [c for c in self.hooks.hook.drg_row_filter(principal=principal, resource=resource, table=table)
                 if c is not None]
        if not found:
            return None
        return found[0] if len(found) == 1 else and_(*found)

    def check_write(self, principal: Principal, resource: str, values: dict[str, Any]) -> None:
        decision = self.hooks.hook.drg_check_write(principal=principal, resource=resource, values=values)
        if decision is not None and not decision.allowed:
            raise Problem(decision.status, TITLES.get(decision.status, "Forbidden"), decision.reason)


class RelatedFilters(Mapping[str, Any]):
    """The caller's row filter of each related table, computed on first use (most requests embed nothing)."""

    def __init__(self, guard: Guard, principal: Principal) -> None:
        self.guard, self.principal = guard, principal
        self._found: dict[str, Any] = {}

    def __getitem__(self, table: str) -> Any:
        if table not in self._found:
            readable = self.guard.decide(self.principal, table, "read").allowed
            self._found[table] = self.guard.row_filter(self.principal, table) if readable else false()
        return self._found[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self.guard.metadata.tables)

    def __len__(self) -> int:
        return len(self.guard.metadata.tables)
