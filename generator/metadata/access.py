"""Who may read and write which entity's aspects. Every refusal says why (the problem's detail).

- Anonymous callers: 401. Team API keys read; they never write (403).
- A data product's entity (`urn:li:dataProduct:<name>`) and the datasets of its tables
  (`urn:li:dataset:(urn:li:dataPlatform:<platform>,<table>,<ENV>)` for this service's platform): written by
  the product's owner team (for a table outside any product, the team that owns the table) or an admin;
  read by those and by teams granted a serving of the product, as the data plane's policy decides.
- A team's entity (`urn:li:corpGroup:<team>`): written by its members or an admin. A user's
  (`urn:li:corpuser:<subject>`): by that user or an admin.
- Anything else (datasets of other platforms, pipelines): read by any authenticated caller, written by any
  that may write.
- `schemaMetadata` the generator wrote is read-only to everyone (409): it follows the generation payload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from generator.errors import Problem
from generator.identity import Principal
from generator.metadata.urns import Urn
from generator.products.catalog import Catalog


def unauthorized() -> Problem:
    return Problem(401, "Unauthorized", "The metadata graph needs an authenticated caller",
                   headers={"WWW-Authenticate": "Bearer"})


def forbidden(reason: str) -> Problem:
    return Problem(403, "Forbidden", reason)


@dataclass(frozen=True)
class Governed:
    """The product (or team) that governs an entity, and who reads it besides its owner."""

    what: str  # "data product it", "team ROCKET's table patient"
    owner: str | None
    readers: frozenset[str]


class Rules:
    def __init__(self, catalog: Callable[[], Catalog], platform: str, env: str) -> None:
        self.catalog, self.platform, self.env = catalog, platform, env

    def governed(self, urn: Urn) -> Governed | None:
        snapshot = self.catalog()
        if urn.entity_type == "dataProduct":
            product = snapshot.product(urn.name)
            if product is None:
                return None
            readers = frozenset().union(*(s.grantees for s in product.servings.values()))
            return Governed(f"data product {product.name}", product.owner, readers)
        if urn.entity_type == "dataset" and urn.platform == self.platform and urn.parts[2] == self.env:
            entry = snapshot.resource(urn.name)
            if entry is None or entry.owner is None:
                return None
            if entry.product is None:
                return Governed(f"team {entry.owner}'s table {entry.name}", entry.owner, entry.grantees)
            product = snapshot.product(entry.product)
            readers = entry.grantees | (frozenset().union(*(s.grantees for s in product.servings.values()))
                                        if product else frozenset())
            return Governed(f"data product {entry.product} (table {entry.name})", entry.owner, readers)
        return None

    def check_read(self, principal: Principal, urn: Urn) -> None:
        if principal.kind == "anonymous":
            raise unauthorized()
        if principal.admin:
            return
        governed = self.governed(urn)
        if governed is None or principal.member_of(governed.owner) or principal.teams & governed.readers:
            return
        raise forbidden(f"{urn} belongs to {governed.what}, owned by team {governed.owner}; {principal.subject} is "
                        "not in that team and no serving of it was granted to its teams")

    def check_write(self, principal: Principal, urn: Urn) -> None:
        if principal.kind == "anonymous":
            raise unauthorized()
        if principal.read_only:
            raise forbidden(f"{principal.subject} is a read-only team key; it cannot change metadata")
        if principal.admin:
            return
        governed = self.governed(urn)
        if governed is not None:
            if not principal.member_of(governed.owner):
                raise forbidden(f"Only team {governed.owner} (the owner of {governed.what}) or an admin may change "
                                f"the metadata of {urn}; {principal.subject} is not a member of {governed.owner}")
        elif urn.entity_type == "corpGroup" and not principal.member_of(urn.name):
            raise forbidden(f"Only members of team {urn.name} or an admin may change the metadata of {urn}")
        elif urn.entity_type == "corpuser" and principal.subject != urn.name:
            raise forbidden(f"Only {urn.name} or an admin may change the metadata of {urn}")


def generated_schema(urn: str) -> Problem:
    return Problem(409, "Conflict", f"The schemaMetadata of {urn} is written by the generator from the generation "
                                    "payload and is read-only: change the table in the payload and post it to "
                                    "/generator; the new version appears here in the same transaction")
