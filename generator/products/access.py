"""Who may do what in the control plane. Every refusal says why (the reason is the problem's detail).

- Anonymous callers have no rights (401). Team keys read; they never change anything (403).
- Anyone else authenticated may read the product catalog and create a product owned by one of their teams.
- Only the owner team or an admin changes a product, reads its logs, or manages its grants.
- Only the team itself or an admin manages a team's keys."""

from __future__ import annotations

from generator.errors import Problem
from generator.identity import Principal


def unauthorized() -> Problem:
    return Problem(401, "Unauthorized", "This route needs an authenticated caller",
                   headers={"WWW-Authenticate": "Bearer"})


def forbidden(reason: str) -> Problem:
    return Problem(403, "Forbidden", reason)


def require_caller(principal: Principal) -> None:
    if principal.kind == "anonymous":
        raise unauthorized()


def require_writer(principal: Principal) -> None:
    require_caller(principal)
    if principal.read_only:
        raise forbidden(f"{principal.subject} is a read-only team key; it cannot change anything")


def require_owner(principal: Principal, product: str, owner: str) -> None:
    """The product's owner team or an admin, and able to write."""
    require_writer(principal)
    if not (principal.admin or principal.member_of(owner)):
        raise forbidden(f"Only team {owner} (the owner of data product {product!r}) or an admin may change it; "
                        f"{principal.subject} is not a member of {owner}")


def require_owner_read(principal: Principal, product: str, owner: str) -> None:
    """The product's owner team or an admin, read-only keys included (for logs)."""
    require_caller(principal)
    if not (principal.admin or principal.member_of(owner)):
        raise forbidden(f"Only team {owner} (the owner of data product {product!r}) or an admin may read this")


def require_team(principal: Principal, team: str) -> None:
    require_writer(principal)
    if not (principal.admin or principal.member_of(team)):
        raise forbidden(f"Only members of team {team} or an admin may manage its keys; "
                        f"{principal.subject} is not a member of {team}")


def default_team(principal: Principal) -> str | None:
    """The team a caller acts for when none is named: its only team; None when it has several or none."""
    return next(iter(principal.teams)) if len(principal.teams) == 1 else None
