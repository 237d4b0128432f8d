"""Team API keys: read-only credentials a team mints for its programs ("your team becomes your identity").

A key reads `drg_<key_id>_<secret>`: `key_id` finds the row, the secret (32 random bytes) is shown once and
stored only as its SHA-256 (a 256-bit random secret needs no salt or slow hash: nothing can be guessed).
Comparison is constant-time. A team holds at most `MAX_KEYS` keys, active or inactive, as AWS does for access
keys: rotation mints a new key and sets the old one inactive, so both are held until the old one is revoked.

`lookup_team_key` answers from the `Catalog` snapshot (no query per request); a revoked or deactivated key
stops working at once in this process and within `catalog.CHECK_SECONDS` in others."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from generator.errors import Problem, not_found
from generator.identity import Principal
from generator.models.engine import reading
from generator.products import audit
from generator.products.catalog import catalog
from generator.products.store import changing
from generator.products.tables import iso, team_keys

MAX_KEYS = 2
PREFIX = "drg_"
KEY_FORM = re.compile(r"drg_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _public(row: Any) -> dict[str, Any]:
    return {"keyId": row.key_id, "team": row.team, "state": "Active" if row.active else "Inactive",
            "created": iso(row.created_at),
            "deactivated": None if row.deactivated_at is None else iso(row.deactivated_at)}


def _keys(connection: Connection, team: str) -> list[Any]:
    return list(connection.execute(select(team_keys).where(team_keys.c.team == team)
                                   .order_by(team_keys.c.created_at, team_keys.c.key_id)))


def list_keys(engine: Engine, team: str) -> list[dict[str, Any]]:
    return [_public(r) for r in reading(engine, lambda c: _keys(c, team))]


def too_many(team: str, detail: str) -> Problem:
    return Problem(429, "Too Many Keys", f"Team {team} already holds {MAX_KEYS} keys; {detail}",
                   extra={"limit": MAX_KEYS})


def _mint(connection: Connection, principal: Principal, team: str, action: str) -> dict[str, Any]:
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    connection.execute(insert(team_keys).values(key_id=key_id, team=team, digest=_digest(secret), active=True))
    row = connection.execute(select(team_keys).where(team_keys.c.key_id == key_id)).one()
    audit.record(connection, principal, action, "credential", team=team, target=key_id, after=_public(row))
    return {**_public(row), "apiKey": f"{PREFIX}{key_id}_{secret}",
            "note": "The apiKey is shown only now; it is stored hashed and cannot be shown again"}


def mint(engine: Engine, principal: Principal, team: str) -> dict[str, Any]:
    with changing(engine) as connection:
        if len(_keys(connection, team)) >= MAX_KEYS:
            raise too_many(team, "revoke one (DELETE /teams/{team}/credentials/{keyId}) before minting another")
        return _mint(connection, principal, team, "mint")


def rotate(engine: Engine, principal: Principal, team: str) -> dict[str, Any]:
    """A new active key; the keys active until now become inactive (revoke them once nothing uses them).
    Inactive keys are revoked first to make room."""
    with changing(engine) as connection:
        held = _keys(connection, team)
        for row in (r for r in held if not r.active):
            connection.execute(delete(team_keys).where(team_keys.c.key_id == row.key_id))
            audit.record(connection, principal, "revoke", "credential", team=team, target=row.key_id,
                         before=_public(row))
        active = [r for r in held if r.active]
        if len(active) >= MAX_KEYS:
            raise too_many(team, "both are active: revoke one before rotating")
        for row in active:
            connection.execute(update(team_keys).where(team_keys.c.key_id == row.key_id)
                               .values(active=False, deactivated_at=datetime.now(UTC)))
            audit.record(connection, principal, "deactivate", "credential", team=team, target=row.key_id,
                         before=_public(row), after={**_public(row), "state": "Inactive"})
        return _mint(connection, principal, team, "rotate")


def revoke(engine: Engine, principal: Principal, team: str, key_id: str | None = None) -> None:
    """Revoke one key, or every key of the team (`key_id` None); 404 when there is nothing to revoke."""
    with changing(engine) as connection:
        held = [r for r in _keys(connection, team) if key_id is None or r.key_id == key_id]
        if key_id is not None and not held:
            raise not_found(f"Team {team} has no key {key_id!r}")
        for row in held:
            connection.execute(delete(team_keys).where(team_keys.c.key_id == row.key_id))
            audit.record(connection, principal, "revoke", "credential", team=team, target=row.key_id,
                         before=_public(row))


def lookup_team_key(engine: Engine, raw: str) -> Principal | None:
    """The principal a presented key stands for; None for anything but an active key of this service
    (malformed, unknown, inactive, revoked): the identity layer answers 401."""
    matched = KEY_FORM.fullmatch(raw.strip())
    if matched is None:
        return None
    key_id, secret = matched.groups()
    entry = catalog(engine).keys.get(key_id)
    if entry is None or not hmac.compare_digest(_digest(secret), entry.digest) or not entry.active:
        return None
    return Principal(subject=f"team-key:{key_id}", kind="team_key", teams=frozenset({entry.team}), read_only=True)
