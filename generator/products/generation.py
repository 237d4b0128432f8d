"""Which product and team own a generation's resources, recorded as the generation is applied.

A payload may name its data product beside `ignore_validation`:

    {"data_resource_schema": {...}, "data_product": {"name": "patients", "owner": "CLINIC"}}

Its resources then belong to that product (created, owned by `owner`, when it does not exist yet; `owner`
defaults to the caller's only team). Only the product's owner team or an admin may generate into an existing
product. Without `data_product`, resources keep the owner they had, and new ones belong to the team that
generated them (the caller's only team; none for an admin without teams). Resources a generation drops lose
their ownership row.

The runtime calls `check_generation` before its DDL (to refuse early) and `record_generation` once the
generation is applied; `record_generation_in` does the same inside a caller's transaction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select

from generator.codec import dumps_text
from generator.errors import Issue, bad_request, conflict
from generator.identity import Principal
from generator.models.engine import for_writes, reading
from generator.products import audit
from generator.products.access import default_team, forbidden
from generator.products.catalog import bump, invalidate
from generator.products.tables import products, resource_owners

NAME_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
TEAM_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")


@dataclass(frozen=True)
class ProductClaim:
    """The product a generation names, and the team that owns (or will own) it."""

    name: str
    owner: str
    exists: bool


def _named(payload: Mapping[str, Any]) -> tuple[str, str | None] | None:
    section = payload.get("data_product")
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise bad_request("data_product must be an object", [Issue("/data_product", "must be an object")])
    name, owner = section.get("name"), section.get("owner")
    issues = []
    if not isinstance(name, str) or not NAME_FORM.fullmatch(name):
        issues.append(Issue("/data_product/name", f"must be a product name matching {NAME_FORM.pattern}"))
    if owner is not None and (not isinstance(owner, str) or not TEAM_FORM.fullmatch(owner)):
        issues.append(Issue("/data_product/owner", f"must be a team name matching {TEAM_FORM.pattern}"))
    unknown = sorted(set(section) - {"name", "owner"})
    issues += [Issue(f"/data_product/{key}", "is not a member of data_product") for key in unknown]
    if issues:
        raise bad_request("The payload's data_product is invalid", issues)
    return name, owner


def check_generation(engine: Engine, principal: Principal, payload: Mapping[str, Any]) -> ProductClaim | None:
    """The product the payload names, if any, once the caller may generate into it (400, 403 or 409)."""
    if principal.read_only:
        raise forbidden(f"{principal.subject} is a read-only credential: team API keys cannot generate")
    named = _named(payload)
    if named is None:
        return None
    name, owner = named
    current = reading(engine, lambda c: c.execute(select(products.c.owner).where(products.c.name == name)).scalar())
    if current is not None:
        if owner is not None and owner != current:
            raise conflict(f"Data product {name!r} is owned by {current}, not {owner}", pointer="/data_product/owner")
        if not (principal.admin or principal.member_of(current)):
            raise forbidden(f"Only team {current} (the owner of data product {name!r}) or an admin may generate "
                            f"into it")
        return ProductClaim(name, current, True)
    owner = owner or default_team(principal)
    if owner is None:
        raise bad_request("Name the new data product's owner", [Issue("/data_product/owner", "is required: the "
                                                                      "caller is not in exactly one team")])
    if not (principal.admin or principal.member_of(owner)):
        raise forbidden(f"{principal.subject} is not a member of {owner}, so cannot create a product it owns")
    return ProductClaim(name, owner, False)


def record_generation(engine: Engine, principal: Principal, generation_payload: Mapping[str, Any],
                      resources: Iterable[Any], *, digest: str = "") -> ProductClaim | None:
    """Record who owns the generation's `resources` (names, or specs with `.name`) and log the generation;
    refreshes the catalog. Raises the same problems as `check_generation`."""
    claim = check_generation(engine, principal, generation_payload)
    with for_writes(engine).begin() as connection:
        record_generation_in(connection, principal, claim, resources, digest=digest)
    invalidate(engine)
    return claim


def record_generation_in(connection: Connection, principal: Principal, claim: ProductClaim | None,
                         resources: Iterable[Any], *, digest: str = "") -> None:
    """As `record_generation`, inside the caller's write transaction; call `catalog.invalidate(engine)` after
    the commit (other processes notice by themselves)."""
    names = sorted({str(getattr(r, "name", r)) for r in resources})
    previous = {r.resource: (r.product, r.team) for r in connection.execute(select(resource_owners))}
    _refuse_dropping_others(principal, previous, names)
    if claim is not None and not claim.exists:
        connection.execute(insert(products).values(name=claim.name, owner=claim.owner, body=dumps_text({})))
        audit.record(connection, principal, "create", "product", product=claim.name, target=claim.name,
                     after={"owner": claim.owner})
    team = claim.owner if claim else default_team(principal)
    rows = [{"resource": n, "generation": digest,
             **({"product": claim.name, "team": claim.owner} if claim else
                dict(zip(("product", "team"), _kept(previous.get(n), team), strict=True)))} for n in names]
    connection.execute(delete(resource_owners))
    if rows:
        connection.execute(insert(resource_owners), rows)
    audit.record(connection, principal, "generate", "generation", product=claim.name if claim else None,
                 team=team, target=digest or None,
                 before={"resources": {n: _owner(o) for n, o in sorted(previous.items())}},
                 after={"resources": {r["resource"]: _owner((r["product"], r["team"])) for r in rows}})
    bump(connection)


def _refuse_dropping_others(principal: Principal, previous: Mapping[str, tuple[str | None, str | None]],
                            names: list[str]) -> None:
    """A generation describes every served resource; one that leaves out resources another team owns would
    take them out of their data products. Only their owners or an administrator may (403 otherwise; the
    generation's transaction rolls back, so nothing is created)."""
    if principal.admin:
        return
    kept = set(names)
    others = sorted(resource for resource, (_, team) in previous.items()
                    if resource not in kept and team is not None and not principal.member_of(team))
    if others:
        raise forbidden(f"This generation leaves out {', '.join(others)}, which other teams own; include them, "
                        "or ask their owners or an administrator")


def _kept(previous: tuple[str | None, str | None] | None, team: str | None) -> tuple[str | None, str | None]:
    """A resource keeps its product or owner team across regenerations; one nobody owned (generated by an
    administrator or the developer, who belong to no team) goes to the team generating it now."""
    if previous is None or previous == (None, None):
        return None, team
    return previous


def _owner(owner: tuple[str | None, str | None]) -> dict[str, str | None]:
    return {"product": owner[0], "team": owner[1]}
