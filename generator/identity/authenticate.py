"""The dispatcher's first step: who sent this request? `Authenticator.authenticate(scope)` answers with a
`Principal`, or raises `Refused` with the problem to send (401, or 503 when the signing keys cannot be had).

Credentials, checked in this order:

* `Authorization: Bearer <token>` where the token is one of AUTH_TOKENS: the `SERVICE` principal (compared as
  SHA-256 digests in constant time);
* `Authorization: Bearer <JWT>`: verified (`tokens.py`), the principal is the token's subject;
* `X-Auth-Token: <key>`: a team API key, looked up by `team_key_lookup` (the products package's).

Production refuses a request without credentials; development (and test) mode lets it through as the
`DEVELOPER`, but credentials that are sent are checked the same way in every mode, so a client that works
against a development server works against production. Sending both headers is refused: one request, one
principal. No token, key or secret is ever logged or echoed."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from anyio import to_thread
from starlette.types import Scope

from generator.asgi import Headers, problem
from generator.config import Settings
from generator.errors import StartupError
from generator.identity.jwks import JwksUnavailable
from generator.identity.principal import ANONYMOUS, DEVELOPER, SERVICE, Principal
from generator.identity.tokens import InvalidToken, TokenVerifier

log = logging.getLogger("generator.identity")
TeamKeyLookup = Callable[[str], Principal | None]
TEAM_KEY_HEADER = b"x-auth-token"
TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# With PUBLIC_DOCS: the documents and Swagger UIs, the metadata graph's too (/admin/ui offers its document)
DOCS = ("/ui", "/openapi.json", "/admin/ui", "/admin/openapi.json", "/openapi/v3/api-docs", "/openapi/swagger-ui")


class Refused(Exception):
    """The answer to a request whose credentials are missing or wrong (401), or cannot be checked (503)."""

    def __init__(self, body: dict[str, Any], headers: Headers) -> None:
        super().__init__(body["detail"])
        self.body, self.headers = body, headers


def no_team_keys(raw_key: str) -> Principal | None:
    """The lookup until the products package plugs its own in: no key is known."""
    return None


class Authenticator:
    def __init__(self, *, production: bool, service_tokens: Iterable[str] = (),
                 verifier: TokenVerifier | None = None, team_key_lookup: TeamKeyLookup | None = None,
                 public_docs: bool = False) -> None:
        self.production, self.verifier, self.public_docs = production, verifier, public_docs
        self.team_key_lookup: TeamKeyLookup = team_key_lookup or no_team_keys
        self._service_digests = [_digest(token.strip()) for token in service_tokens if token.strip()]
        self._verified = VerifiedTokens(verifier.cache_seconds if verifier is not None else 0.0)

    @classmethod
    def from_settings(cls, settings: Settings, team_key_lookup: TeamKeyLookup | None = None) -> Authenticator:
        """Raises StartupError for a configuration that cannot work (production without any credential
        source, an unusable JWT setting)."""
        try:
            verifier = TokenVerifier.from_settings(settings)
        except (ValueError, OSError) as exc:
            raise StartupError(f"JWT settings: {exc}") from None
        if settings.production and not settings.auth_tokens and verifier is None:
            raise StartupError(
                "APP_ENV=production requires credentials to check: set AUTH_TOKENS (comma-separated service "
                "bearer tokens), JWT_JWKS_URL or JWT_JWKS_FILE (RS256/ES256 JWTs), or JWT_SECRET (HS256 JWTs); "
                "refusing to start an unauthenticated production service")
        if settings.production and verifier is not None and verifier.jwks is not None and not settings.jwt_audience:
            log.warning("JWT_AUDIENCE is not set: any token of the identity provider is accepted, whichever "
                        "application it was issued for")
        if settings.production and settings.jwt_secret:
            log.warning("JWT_SECRET is set in production: anyone who knows it can sign tokens; prefer a JWKS")
        return cls(production=settings.production, service_tokens=settings.auth_tokens, verifier=verifier,
                   team_key_lookup=team_key_lookup, public_docs=settings.public_docs)

    async def authenticate(self, scope: Scope) -> Principal:
        authorization = _headers(scope, b"authorization")
        team_key = _headers(scope, TEAM_KEY_HEADER)
        if len(authorization) > 1 or len(team_key) > 1:
            raise _unauthorized("Send one Authorization or X-Auth-Token header", "invalid_request")
        if authorization and team_key:
            raise _unauthorized("Send either Authorization or X-Auth-Token, not both", "invalid_request")
        if authorization:
            return await self._bearer(authorization[0].decode("latin-1"))
        if team_key:
            return await self._team_key(team_key[0].decode("latin-1").strip())
        if not self.production:
            return DEVELOPER
        if self.public_docs and scope["method"] in ("GET", "HEAD") and _is_docs(scope["path"]):
            return ANONYMOUS
        raise _unauthorized("This service requires 'Authorization: Bearer <token>' or 'X-Auth-Token: <key>'")

    async def _bearer(self, value: str) -> Principal:
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Send 'Authorization: Bearer <token>'", "invalid_request")
        presented = _digest(token)
        if any(hmac.compare_digest(presented, known) for known in self._service_digests):
            return SERVICE
        if not TOKEN68.fullmatch(token) or token.count(".") != 2:
            raise _unauthorized("The bearer token is not known", "invalid_token")
        if self.verifier is None:
            raise _unauthorized("This service does not accept JWTs", "invalid_token")
        known = self._verified.get(presented)
        if known is not None:
            return known
        try:
            algorithm, kid = self.verifier.header(token)
            keys: tuple[Any, ...] = ()
            if kid is not None and self.verifier.jwks is not None:
                cached = self.verifier.jwks.cached(kid)
                # Not in memory: load in a worker thread, never on the event loop.
                keys = cached if cached is not None else await to_thread.run_sync(self.verifier.jwks.keys, kid)
            principal = self.verifier.verify(token, algorithm, keys)
            self._verified.put(presented, principal)
            return principal
        except InvalidToken as invalid:
            log.debug("rejected a bearer token: %s", invalid.description)
            raise _unauthorized(invalid.description, "invalid_token") from None
        except JwksUnavailable:
            raise Refused(problem(503, "Service Unavailable", "The signing keys of bearer tokens cannot be loaded "
                                                             "right now; try again shortly"),
                          [(b"retry-after", b"5")]) from None

    async def _team_key(self, key: str) -> Principal:
        if not key:
            raise _unauthorized("X-Auth-Token is empty", "invalid_request")
        try:
            found = await to_thread.run_sync(self.team_key_lookup, key)
        except Exception as exc:  # noqa: BLE001 (the key store failed; the key itself may be fine)
            log.error("team key lookup failed: %s", type(exc).__name__)
            raise Refused(problem(503, "Service Unavailable", "Team API keys cannot be checked right now; "
                                                             "try again shortly"), [(b"retry-after", b"5")]) from None
        if not isinstance(found, Principal):
            raise _unauthorized("The X-Auth-Token key is not known", "invalid_token")
        return found


class VerifiedTokens:
    """Tokens verified in the last few seconds, by digest: a client sends the same token on every request,
    and verifying it (signature, claims) costs more than the rest of a key read. An entry lives at most
    `seconds` (no longer than the JWKS refresh interval, so a withdrawn key stops working as soon as it
    would otherwise) and never past the token's `exp`; the cache is bounded."""

    LIMIT = 10_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[bytes, tuple[Principal, float]] = {}

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] <= time.time():
            self._entries.pop(digest, None)
            return None
        return entry[0]

    def put(self, digest: bytes, principal: Principal) -> None:
        if self.seconds <= 0:
            return
        expires = principal.claims.get("exp") if isinstance(principal.claims, Mapping) else None
        until = time.time() + self.seconds
        if isinstance(expires, int | float):
            until = min(until, float(expires))
        if len(self._entries) >= self.LIMIT:
            self._entries.pop(next(iter(self._entries)))
        self._entries[digest] = (principal, until)


def _unauthorized(detail: str, error: str | None = None) -> Refused:
    challenge = "Bearer"
    if error is not None:
        challenge += f' error="{error}", error_description="{detail.replace(chr(34), chr(39))}"'
    return Refused(problem(401, "Unauthorized", detail), [(b"www-authenticate", challenge.encode())])


def _headers(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key == name]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _is_docs(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in DOCS)
