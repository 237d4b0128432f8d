"""The caller of a request, as every layer sees it: the dispatcher authenticates and puts a `Principal` into
the ASGI scope (`PRINCIPAL_KEY`); handlers, hooks and policies read it from there and never look at headers.

Teams are bare names (`G_TEAM_PROVIDER` in a token's groups means team `PROVIDER`); tenancy attributes come
from the token's claims. In development mode, a request without credentials is the `DEVELOPER`: an
administrator, because development mode is open (and says so at start-up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PRINCIPAL_KEY = "drg.principal"
Kind = Literal["anonymous", "developer", "service", "user", "team_key"]


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: Kind
    teams: frozenset[str] = frozenset()
    admin: bool = False
    read_only: bool = False  # team API keys read; they never write
    orgs: frozenset[str] = frozenset()
    tenant_ids: frozenset[str] = frozenset()
    tenant_group_ids: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def member_of(self, team: str | None) -> bool:
        return team is not None and team in self.teams


ANONYMOUS = Principal(subject="anonymous", kind="anonymous")  # no rights: what a missing principal means
DEVELOPER = Principal(subject="developer", kind="developer", admin=True)
SERVICE = Principal(subject="service-token", kind="service", admin=True)  # the static AUTH_TOKENS


def principal_of(scope: Mapping[str, Any]) -> Principal:
    """The request's principal; anonymous (no rights) when none was set, so a route the dispatcher did not
    authenticate can never act as someone."""
    found = scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else ANONYMOUS
