"""Bearer JWTs: verified with PyJWT, then read into a `Principal`.

RS*/ES*/PS* tokens are checked against the JWKS (`jwks.py`) by their `kid`; HS* tokens against JWT_SECRET.
Only the algorithms of JWT_ALGORITHMS are taken (never `none`); `exp` and `sub` are required; `exp`, `nbf`
and `iat` are checked with JWT_LEEWAY_SECONDS of clock skew; `aud` and `iss` when JWT_AUDIENCE and
JWT_ISSUER are set. A failure is an `InvalidToken` whose description is fixed text: it never repeats the
token or any of its claims."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK

from generator.config import Settings
from generator.identity.jwks import JwksCache, key_fits
from generator.identity.principal import Principal

SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ["exp", "sub"]


class InvalidToken(Exception):
    """A token that does not prove who sent it; `description` goes into the 401's WWW-Authenticate."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class ClaimNames:
    groups: str = "groups"
    admin_group: str = "G_TEAM_PLATFORM_ADMIN"
    team_prefix: str = "G_TEAM_"
    orgs: str = "orgs"
    tenants: str = "tenantIds"
    tenant_groups: str = "tenantGroupIds"

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaimNames:
        return cls(settings.jwt_groups_claim, settings.admin_group, settings.team_prefix, settings.orgs_claim,
                   settings.tenants_claim, settings.tenant_groups_claim)


class TokenVerifier:
    """Verifies one token at a time. `signing_keys` tells the caller what a token needs (a secret, cached
    keys, or a JWKS load in a worker thread); `verify` then checks it with those keys."""

    def __init__(self, *, algorithms: Iterable[str], secret: str = "", jwks: JwksCache | None = None,
                 audience: Iterable[str] = (), issuer: str = "", leeway_seconds: float = 30,
                 names: ClaimNames | None = None) -> None:
        self.algorithms = frozenset(algorithms)
        unknown = self.algorithms - SYMMETRIC - ASYMMETRIC
        if unknown:  # `none` lands here too
            raise ValueError(f"JWT_ALGORITHMS may list {', '.join(sorted(SYMMETRIC | ASYMMETRIC))}; "
                             f"not {', '.join(sorted(unknown))}")
        if self.algorithms & SYMMETRIC and not secret:
            raise ValueError("JWT_ALGORITHMS lists HS* algorithms, which need JWT_SECRET")
        if self.algorithms & ASYMMETRIC and jwks is None and secret:
            raise ValueError("JWT_ALGORITHMS lists RS*/ES*/PS* algorithms, which need JWT_JWKS_URL or JWT_JWKS_FILE")
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (RFC 7518, 3.2)")
        self.secret, self.jwks = secret.encode(), jwks
        self.audience, self.issuer = list(audience), issuer
        self.leeway_seconds = leeway_seconds
        self.names = names or ClaimNames()

    @property
    def cache_seconds(self) -> float:
        """How long a verified token may be reused without verifying it again (see `VerifiedTokens`): at
        most 30 s, and never longer than the JWKS may go without a refresh."""
        refresh = getattr(self.jwks, "min_refresh_seconds", None) if self.jwks is not None else None
        return min(30.0, float(refresh)) if isinstance(refresh, int | float) else 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier | None:
        """None when no JWT verification is configured (only AUTH_TOKENS, or nothing)."""
        options = {"min_refresh_seconds": settings.jwt_jwks_min_refresh_seconds,
                   "max_age_seconds": settings.jwt_jwks_cache_seconds}
        jwks: JwksCache | None = None
        if settings.jwt_jwks_url and settings.jwt_jwks_file:
            raise ValueError("set JWT_JWKS_URL or JWT_JWKS_FILE, not both")
        if settings.jwt_jwks_url:
            jwks = JwksCache.from_url(settings.jwt_jwks_url, timeout_seconds=settings.jwt_jwks_timeout_seconds,
                                      **options)
        elif settings.jwt_jwks_file:
            jwks = JwksCache.from_file(settings.jwt_jwks_file, **options)
        if jwks is None and not settings.jwt_secret:
            return None
        return cls(algorithms=settings.jwt_algorithms, secret=settings.jwt_secret, jwks=jwks,
                   audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                   leeway_seconds=settings.jwt_leeway_seconds, names=ClaimNames.from_settings(settings))

    def header(self, token: str) -> tuple[str, str | None]:
        """The token's algorithm (one this service takes) and kid, read before any verification."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("The token is not a well-formed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise InvalidToken("The token's signing algorithm is not accepted")
        if algorithm in ASYMMETRIC:
            if self.jwks is None:
                raise InvalidToken("The token's signing algorithm is not accepted")
            if not isinstance(kid, str) or not kid:
                raise InvalidToken("The token names no signing key (kid)")
            return algorithm, kid
        return algorithm, None

    def verify(self, token: str, algorithm: str, keys: tuple[PyJWK, ...] = ()) -> Principal:
        """The principal of a token whose header `header()` read; `keys` are the JWKS keys of its kid."""
        if algorithm in SYMMETRIC:
            candidates: list[Any] = [self.secret]
        else:
            candidates = [key.key for key in keys if key_fits(key, algorithm)]
            if not candidates:
                raise InvalidToken("The token's signing key is not known")
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token, key, algorithms=[algorithm], audience=self.audience or None,
                    issuer=self.issuer or None, leeway=self.leeway_seconds,
                    options={"require": REQUIRED_CLAIMS, "verify_aud": bool(self.audience),
                             "verify_signature": True, "verify_exp": True, "verify_nbf": True,
                             "verify_iat": True, "verify_iss": bool(self.issuer)},
                )
                break
            except jwt.InvalidSignatureError:
                continue  # another key of the same kid may fit
            except jwt.PyJWTError as exc:
                raise InvalidToken(_description(exc)) from None
        if claims is None:
            raise InvalidToken("The token's signature is not valid")
        return principal_from_claims(claims, self.names)


def _description(exc: jwt.PyJWTError) -> str:
    """Fixed text for each failure: PyJWT's own messages may quote claim values."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "The token has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "The token is not valid yet"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "The token is not meant for this service (audience)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "The token's issuer is not accepted"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"The token lacks a required claim ({exc.claim})" if exc.claim in REQUIRED_CLAIMS + ["aud", "iss"] \
            else "The token lacks a required claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "The token's signature is not valid"
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return "The token's issue time is not valid"
    if isinstance(exc, jwt.InvalidKeyError):
        return "The token's signing key does not fit its algorithm"
    return "The token is not valid"


def principal_from_claims(claims: Mapping[str, Any], names: ClaimNames) -> Principal:
    """Subject, teams and admin rights from the groups claim, tenancy from their claims. A group may be sent
    as a top-level path (`/G_TEAM_PROVIDER`, as Keycloak does); nested paths are not teams."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("The token's subject (sub) must be a non-empty string")
    groups = {_group_name(group) for group in _strings(_claim(claims, names.groups))}
    prefix = names.team_prefix
    teams = frozenset(group[len(prefix):] for group in groups if group.startswith(prefix) and len(group) > len(prefix))
    return Principal(
        subject=subject,
        kind="user",
        teams=teams,
        admin=names.admin_group in groups,
        orgs=frozenset(_strings(_claim(claims, names.orgs))),
        tenant_ids=frozenset(_strings(_claim(claims, names.tenants))),
        tenant_group_ids=frozenset(_strings(_claim(claims, names.tenant_groups))),
        claims=dict(claims),
    )


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name, or by dotted path into nested objects (`realm_access.roles`) when no claim has the
    whole name."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    """A claim as a list of names: a list of strings (or integers, as text), or one string; anything else
    (objects, booleans, nulls) counts as nothing."""
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, bool):
            continue
        if isinstance(item, str) and item:
            found.append(item)
        elif isinstance(item, int):
            found.append(str(item))
    return found


def _group_name(group: str) -> str:
    if group.startswith("/") and "/" not in group[1:]:
        return group[1:]
    return group
