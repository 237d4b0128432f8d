"""Identity: the JWT verifier (table-driven), claims into a Principal, the JWKS cache's refetch rules, and the
Authenticator's answers (401 problems with WWW-Authenticate, 503 when keys cannot be loaded) in process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from generator.api.openapi import build_document
from generator.config import REPO_ROOT, Settings
from generator.errors import StartupError
from generator.identity.authenticate import Authenticator, Refused
from generator.identity.jwks import JwksCache, JwksUnavailable, check_jwks_url, parse_jwks
from generator.identity.principal import ANONYMOUS, DEVELOPER, SERVICE, Principal
from generator.identity.tokens import ClaimNames, InvalidToken, TokenVerifier, principal_from_claims
from generator.payload import parse_payload
from generator.payload.schema import openapi_validator

SECRET = "s" * 40
AUDIENCE, ISSUER = "drg", "https://idp.example"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    return {**json.loads(algorithm.to_jwk(private.public_key())), "kid": kid, "use": "sig"}


JWKS = {"keys": [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1")]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "ann", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 300,
            "groups": ["G_TEAM_PROVIDER", "/G_TEAM_CONSUMER", "other"]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], algorithm: str = "RS256", kid: str | None = "rsa-1", key: Any = None) -> str:
    if key is None:
        key = {"RS256": RSA_KEY, "ES256": EC_KEY, "HS256": SECRET}[algorithm]
    headers = {"kid": kid} if kid else {}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def alg_none(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, None, algorithm="none", headers={"kid": "rsa-1"})


def forged(payload: dict[str, Any]) -> str:
    """Signed by another RSA key under a kid the service knows."""
    return sign(payload, key=OTHER_RSA_KEY)


def tampered(payload: dict[str, Any]) -> str:
    """A valid token whose payload was swapped for another (admin) one, signature kept."""
    header, _, signature = sign(payload).split(".")
    other = jwt.encode({**payload, "groups": ["G_TEAM_PLATFORM_ADMIN"]}, "x" * 32, algorithm="HS256")
    return ".".join((header, other.split(".")[1], signature))


def confused(payload: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HS256 keyed with the RSA public key (PEM), under the RSA kid."""
    pem = RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    head = base64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = base64url(json.dumps(payload).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64url(signature)}"


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verifier(**options: Any) -> TokenVerifier:
    jwks = JwksCache(lambda: json.dumps(JWKS).encode(), "test")
    settings = {"algorithms": ("RS256", "ES256", "HS256"), "secret": SECRET, "jwks": jwks,
                "audience": (AUDIENCE,), "issuer": ISSUER, "leeway_seconds": 30}
    settings.update(options)
    return TokenVerifier(**settings)


def verify(v: TokenVerifier, token: str) -> Principal:
    algorithm, kid = v.header(token)
    keys = v.jwks.keys(kid) if kid is not None and v.jwks is not None else ()
    return v.verify(token, algorithm, keys)


VALID: dict[str, Callable[[], str]] = {
    "rs256": lambda: sign(claims()),
    "es256": lambda: sign(claims(), "ES256", "ec-1"),
    "hs256": lambda: sign(claims(), "HS256", None),
    "leeway-on-exp": lambda: sign(claims(exp=int(time.time()) - 10)),
    "leeway-on-nbf": lambda: sign(claims(nbf=int(time.time()) + 10)),
    "audience-in-a-list": lambda: sign(claims(aud=["other", AUDIENCE])),
}
INVALID: dict[str, tuple[Callable[[], str], str]] = {
    "forged-signature": (lambda: forged(claims()), "signature"),
    "tampered-payload": (lambda: tampered(claims()), "signature"),
    "hs256-wrong-secret": (lambda: sign(claims(), "HS256", None, "w" * 40), "signature"),
    "expired": (lambda: sign(claims(exp=int(time.time()) - 120)), "expired"),
    "nbf-in-future": (lambda: sign(claims(nbf=int(time.time()) + 120)), "not valid yet"),
    "iat-in-future": (lambda: sign(claims(iat=int(time.time()) + 120)), "not valid yet"),
    "wrong-audience": (lambda: sign(claims(aud="other")), "audience"),
    "no-audience": (lambda: sign(claims(aud=None)), "aud"),
    "wrong-issuer": (lambda: sign(claims(iss="https://evil.example")), "issuer"),
    "no-exp": (lambda: sign(claims(exp=None)), "exp"),
    "no-sub": (lambda: sign(claims(sub=None)), "sub"),
    "empty-sub": (lambda: sign(claims(sub="")), "subject"),
    "alg-none": (lambda: alg_none(claims()), "algorithm"),
    "unknown-kid": (lambda: sign(claims(), kid="rsa-2"), "not known"),
    "no-kid": (lambda: sign(claims(), kid=None), "kid"),
    "rsa-key-named-as-ec": (lambda: sign(claims(), kid="ec-1"), "not known"),
    "es-token-on-rsa-kid": (lambda: sign(claims(), "ES256", "rsa-1"), "not known"),
    "not-a-jwt": (lambda: "a.b.c", "well-formed"),
    "hs512-not-accepted": (lambda: jwt.encode(claims(), SECRET * 2, algorithm="HS512"), "algorithm"),
    "hs256-keyed-with-the-public-key": (lambda: confused(claims()), "signature"),
}


@pytest.mark.parametrize("make", list(VALID.values()), ids=list(VALID))
def test_valid_tokens_give_their_principal(make: Callable[[], str]) -> None:
    principal = verify(verifier(), make())
    assert principal.subject == "ann" and principal.kind == "user"
    assert principal.teams == {"PROVIDER", "CONSUMER"}
    assert not principal.admin


@pytest.mark.parametrize(("make", "reason"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_tokens_are_refused_with_a_fixed_description(make: Callable[[], str], reason: str) -> None:
    token = make()
    with pytest.raises(InvalidToken) as refused:
        verify(verifier(), token)
    assert reason in refused.value.description, refused.value.description
    assert token not in refused.value.description


def test_issuer_and_audience_are_not_checked_when_unset() -> None:
    v = verifier(audience=(), issuer="")
    assert verify(v, sign(claims(aud="anything", iss="anyone"))).subject == "ann"


def test_a_verifier_without_a_jwks_refuses_rs256_and_without_a_secret_refuses_hs256() -> None:
    with pytest.raises(InvalidToken, match="algorithm"):
        verify(verifier(algorithms=("HS256",), jwks=None), sign(claims()))
    with pytest.raises(InvalidToken, match="algorithm"):
        verify(verifier(algorithms=("RS256",), secret=""), sign(claims(), "HS256", None))


@pytest.mark.parametrize(("options", "message"), [
    ({"algorithms": ("none",)}, "not none"),
    ({"algorithms": ("HS256",), "secret": ""}, "JWT_SECRET"),
    ({"secret": "short"}, "32 bytes"),
    ({"algorithms": ("RS256", "HS256"), "jwks": None}, "JWT_JWKS_URL"),
], ids=["alg-none", "hs-without-secret", "short-secret", "rs-without-jwks"])
def test_unusable_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        verifier(**options)


@pytest.mark.parametrize(("token_claims", "expected"), [
    ({"groups": ["G_TEAM_PLATFORM_ADMIN", "G_TEAM_PROVIDER"]},
     {"teams": {"PLATFORM_ADMIN", "PROVIDER"}, "admin": True}),
    ({"groups": ["/G_TEAM_PLATFORM_ADMIN"]}, {"teams": {"PLATFORM_ADMIN"}, "admin": True}),
    ({"groups": ["/parent/G_TEAM_PROVIDER", "G_TEAM_", "g_team_lower", "PROVIDER"]}, {"teams": set(),
                                                                                      "admin": False}),
    ({"groups": "G_TEAM_SOLO"}, {"teams": {"SOLO"}}),
    ({"groups": [{"name": "G_TEAM_X"}, None, True, 7]}, {"teams": set()}),
    ({}, {"teams": set(), "admin": False, "orgs": set(), "tenant_ids": set(), "tenant_group_ids": set()}),
    ({"orgs": ["acme", "globex"], "tenantIds": ["t1", 2], "tenantGroupIds": "tg1"},
     {"orgs": {"acme", "globex"}, "tenant_ids": {"t1", "2"}, "tenant_group_ids": {"tg1"}}),
    ({"orgs": {"acme": True}, "tenantIds": None}, {"orgs": set(), "tenant_ids": set()}),
], ids=["admin-and-team", "keycloak-path", "not-teams", "one-string", "odd-items", "no-claims", "tenancy",
        "tenancy-odd-shapes"])
def test_claims_become_teams_admin_rights_and_tenancy(token_claims: dict[str, Any],
                                                      expected: dict[str, Any]) -> None:
    principal = principal_from_claims({"sub": "ann", **token_claims}, ClaimNames())
    for name, value in expected.items():
        assert getattr(principal, name) == value, name


def test_claim_names_are_configurable_and_may_be_paths() -> None:
    names = ClaimNames(groups="realm_access.roles", admin_group="ADMINS", team_prefix="team-", orgs="org",
                       tenants="tenant", tenant_groups="tg")
    principal = principal_from_claims({"sub": "bob", "realm_access": {"roles": ["ADMINS", "team-a"]},
                                       "org": "o", "tenant": ["t"], "tg": ["g"], "groups": ["G_TEAM_X"]}, names)
    assert principal.admin and principal.teams == {"a"}
    assert (principal.orgs, principal.tenant_ids, principal.tenant_group_ids) == ({"o"}, {"t"}, {"g"})
    assert principal.claims["sub"] == "bob"


# --- the JWKS cache --------------------------------------------------------------------------------------


class Source:
    """A key set that changes, counting loads; `fail` makes the next loads raise."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys, self.loads, self.fail = list(keys), 0, False

    def __call__(self) -> bytes:
        self.loads += 1
        if self.fail:
            raise OSError("connection refused")
        return json.dumps({"keys": self.keys}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_kid_refetches_at_most_once_per_interval() -> None:
    source, clock = Source(jwk(RSA_KEY, "a")), Clock()
    cache = JwksCache(source, "test", min_refresh_seconds=60, max_age_seconds=300, clock=clock)
    assert cache.cached("a") is None  # nothing loaded yet
    assert cache.keys("a") and source.loads == 1
    assert cache.cached("a")
    assert cache.keys("b") == () and source.loads == 1  # loaded a moment ago: no refetch
    source.keys.append(jwk(EC_KEY, "b"))
    clock.now += 30
    assert cache.keys("b") == () and source.loads == 1  # still within the minute
    clock.now += 31
    assert cache.keys("b") and source.loads == 2  # the rotated-in key is found
    assert cache.keys("b") and source.loads == 2  # and cached


def test_a_removed_key_stops_working_when_the_set_is_refetched() -> None:
    source, clock = Source(jwk(RSA_KEY, "a")), Clock()
    cache = JwksCache(source, "test", min_refresh_seconds=60, max_age_seconds=300, clock=clock)
    assert cache.keys("a")
    source.keys = [jwk(EC_KEY, "b")]
    clock.now += 301  # too old: the next use refetches
    assert cache.cached("a") is None
    assert cache.keys("a") == () and source.loads == 2


def test_a_failed_fetch_is_unavailable_without_keys_and_serves_stale_keys_for_a_while() -> None:
    source, clock = Source(jwk(RSA_KEY, "a")), Clock()
    cache = JwksCache(source, "test", min_refresh_seconds=60, max_age_seconds=300, clock=clock)
    source.fail = True
    with pytest.raises(JwksUnavailable):
        cache.keys("a")
    with pytest.raises(JwksUnavailable):  # retried no sooner than 5 s: no second load
        cache.keys("a")
    assert source.loads == 1
    clock.now += 6
    source.fail = False
    assert cache.keys("a") and source.loads == 2
    source.fail = True
    clock.now += 301
    assert cache.keys("a") and source.loads == 3  # the provider is down: the old set still serves
    clock.now += 300
    with pytest.raises(JwksUnavailable):
        cache.keys("a")


def test_concurrent_lookups_load_once() -> None:
    started = threading.Event()

    def slow() -> bytes:
        started.set()
        time.sleep(0.2)
        return json.dumps({"keys": [jwk(RSA_KEY, "a")]}).encode()

    counting = Source()
    cache = JwksCache(lambda: (counting(), slow())[1], "test")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.keys("a"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8 and all(results) and counting.loads == 1


@pytest.mark.parametrize("document", [b"{}", b"[]", b'{"keys": []}', b"not json",
                                      json.dumps({"keys": [{"kty": "oct", "k": "AAAA", "kid": "x"}]}).encode(),
                                      json.dumps({"keys": [{**jwk(RSA_KEY, "a"), "use": "enc"}]}).encode(),
                                      json.dumps({"keys": [{k: v for k, v in jwk(RSA_KEY, "a").items()
                                                            if k != "kid"}]}).encode()],
                         ids=["no-keys", "array", "empty", "not-json", "symmetric", "encryption", "no-kid"])
def test_a_jwks_without_usable_signing_keys_is_an_error(document: bytes) -> None:
    with pytest.raises(ValueError):
        parse_jwks(document)


@pytest.mark.parametrize(("url", "ok"), [("https://idp.example/jwks", True), ("http://127.0.0.1:8080/jwks", True),
                                         ("http://localhost/jwks", True), ("http://[::1]/jwks", True),
                                         ("http://idp.example/jwks", False), ("file:///etc/jwks.json", False),
                                         ("idp.example/jwks", False)])
def test_jwks_urls_are_https_or_loopback(url: str, ok: bool) -> None:
    if ok:
        check_jwks_url(url)
    else:
        with pytest.raises(ValueError):
            check_jwks_url(url)


# --- the Authenticator ------------------------------------------------------------------------------------


def scope(path: str = "/people", method: str = "GET", **headers: str) -> dict[str, Any]:
    return {"type": "http", "path": path, "method": method,
            "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]}


def authenticate(authenticator: Authenticator, request: dict[str, Any]) -> Principal:
    return asyncio.run(authenticator.authenticate(request))


def refusal(authenticator: Authenticator, request: dict[str, Any]) -> Refused:
    with pytest.raises(Refused) as refused:
        authenticate(authenticator, request)
    return refused.value


TEAM = Principal(subject="team-key:PROVIDER", kind="team_key", teams=frozenset({"PROVIDER"}), read_only=True)


def production(**options: Any) -> Authenticator:
    settings: dict[str, Any] = {"verifier": verifier(),
                                "team_key_lookup": lambda key: TEAM if key == "team-secret" else None}
    settings.update(options)
    return Authenticator(production=True, service_tokens=("tok1",), **settings)


def test_each_credential_gives_its_principal() -> None:
    auth = production()
    assert authenticate(auth, scope(authorization="Bearer tok1")) is SERVICE
    assert authenticate(auth, scope(authorization="bearer  tok1 ")) is SERVICE
    assert authenticate(auth, scope(authorization=f"Bearer {sign(claims())}")).subject == "ann"
    assert authenticate(auth, scope(x_auth_token="team-secret")) is TEAM


@pytest.mark.parametrize("headers", [
    {}, {"authorization": "Bearer wrong"}, {"authorization": "Basic tok1"}, {"authorization": "tok1"},
    {"authorization": "Bearer"}, {"authorization": f"Bearer {forged(claims())}"}, {"x_auth_token": "guess"},
    {"x_auth_token": ""}, {"authorization": "Bearer tok1", "x_auth_token": "team-secret"},
], ids=["none", "wrong", "basic", "no-scheme", "scheme-only", "forged-jwt", "unknown-team-key", "empty-team-key",
        "both"])
def test_production_refuses_with_a_bearer_challenge(headers: dict[str, str]) -> None:
    refused = refusal(production(), scope(**headers))
    assert refused.body["status"] == 401 and refused.body["title"] == "Unauthorized"
    challenge = dict(refused.headers)[b"www-authenticate"].decode()
    assert challenge.startswith("Bearer")
    for value in headers.values():
        if len(value) > 6:
            assert value.split()[-1] not in challenge and value.split()[-1] not in json.dumps(refused.body)


def test_a_bad_jwt_says_invalid_token() -> None:
    refused = refusal(production(), scope(authorization=f"Bearer {sign(claims(exp=1))}"))
    assert dict(refused.headers)[b"www-authenticate"] == (
        b'Bearer error="invalid_token", error_description="The token has expired"')


def test_development_lets_requests_without_credentials_in_but_checks_those_sent() -> None:
    auth = Authenticator(production=False, service_tokens=("tok1",), verifier=verifier())
    assert authenticate(auth, scope()) is DEVELOPER
    assert authenticate(auth, scope(authorization="Bearer tok1")) is SERVICE
    assert refusal(auth, scope(authorization="Bearer wrong")).body["status"] == 401
    assert refusal(auth, scope(authorization=f"Bearer {forged(claims())}")).body["status"] == 401
    assert refusal(auth, scope(x_auth_token="any")).body["status"] == 401  # no team keys plugged in


def test_public_docs_open_only_the_documentation_reads() -> None:
    auth = production(public_docs=True)
    for path in ("/ui/", "/ui/swagger-ui-bundle.js", "/openapi.json", "/admin/ui/", "/admin/openapi.json",
                 "/openapi/v3/api-docs", "/openapi/swagger-ui/"):
        assert authenticate(auth, scope(path)) is ANONYMOUS
    for path, method in (("/people", "GET"), ("/openapi.json", "POST"), ("/uix", "GET"), ("/health", "GET"),
                         ("/openapi/entities/v1/latest", "GET"), ("/openapi/v3/entity/dataset/batchGet", "POST")):
        assert refusal(auth, scope(path, method)).body["status"] == 401
    assert refusal(production(), scope("/openapi.json")).body["status"] == 401  # off by default


def test_an_unreachable_jwks_is_503_and_a_failing_key_store_too() -> None:
    def down() -> bytes:
        raise OSError("unreachable")

    auth = production(verifier=verifier(jwks=JwksCache(down, "test")),
                      team_key_lookup=lambda key: (_ for _ in ()).throw(RuntimeError("db down")))
    for request in (scope(authorization=f"Bearer {sign(claims())}"), scope(x_auth_token="team-secret")):
        refused = refusal(auth, request)
        assert refused.body["status"] == 503 and (b"retry-after", b"5") in refused.headers


def test_the_jwks_is_loaded_off_the_event_loop() -> None:
    loop_thread: list[int] = []
    load_thread: list[int] = []

    def load() -> bytes:
        load_thread.append(threading.get_ident())
        return json.dumps(JWKS).encode()

    auth = production(verifier=verifier(jwks=JwksCache(load, "test")))

    async def run() -> Principal:
        loop_thread.append(threading.get_ident())
        return await auth.authenticate(scope(authorization=f"Bearer {sign(claims())}"))

    assert asyncio.run(run()).subject == "ann"
    assert load_thread and load_thread[0] != loop_thread[0]


@pytest.mark.parametrize(("env", "message"), [
    ({"APP_ENV": "production"}, "AUTH_TOKENS"),
    ({"APP_ENV": "production", "JWT_SECRET": "short"}, "32 bytes"),
    ({"APP_ENV": "production", "JWT_JWKS_URL": "http://idp.example/jwks"}, "https"),
    ({"APP_ENV": "production", "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "none"}, "none"),
    ({"APP_ENV": "production", "JWT_JWKS_URL": "https://a/j", "JWT_JWKS_FILE": "/j"}, "not both"),
], ids=["nothing", "short-secret", "plain-http", "alg-none", "url-and-file"])
def test_start_up_refuses_unusable_identity_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(StartupError, match=message):
        Authenticator.from_settings(Settings.from_env(env))


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env({"JWT_SECRET": SECRET, "JWT_AUDIENCE": "a, b", "JWT_ISSUER": ISSUER,
                                  "JWT_GROUPS_CLAIM": "roles", "JWT_JWKS_MIN_REFRESH_SECONDS": "1"})
    assert settings.jwt_algorithms == ("HS256",)
    assert settings.jwt_audience == ("a", "b") and settings.jwt_groups_claim == "roles"
    assert settings.jwt_jwks_min_refresh_seconds == 1.0 and settings.jwt_leeway_seconds == 30
    assert Settings.from_env({"JWT_JWKS_URL": "https://idp/jwks"}).jwt_algorithms == ("RS256", "ES256")
    both = Settings.from_env({"JWT_JWKS_FILE": "/k", "JWT_SECRET": SECRET})
    assert both.jwt_algorithms == ("RS256", "ES256", "HS256")
    assert Settings.from_env({"JWT_ALGORITHMS": "ES256"}).jwt_algorithms == ("ES256",)
    assert (settings.admin_group, settings.team_prefix) == ("G_TEAM_PLATFORM_ADMIN", "G_TEAM_")


# --- the served documents ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("auth_required", "security"), [
    (True, [{"bearerAuth": []}, {"teamKey": []}]),
    (False, [{"bearerAuth": []}, {"teamKey": []}, {}]),
], ids=["production", "development"])
def test_the_generated_document_declares_either_credential(
    load_payload: Callable[[str], dict[str, Any]], auth_required: bool, security: list[dict[str, Any]]
) -> None:
    document = build_document(parse_payload(load_payload("default.json")), default_limit=100, max_limit=1000,
                              auth_required=auth_required)
    assert document["security"] == security
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["teamKey"] == {**schemes["teamKey"], "type": "apiKey", "in": "header", "name": "X-Auth-Token"}
    for item in document["paths"].values():
        for operation in item.values():
            assert "401" in operation["responses"]
    assert not [e.message for e in openapi_validator().iter_errors(document)]


def test_the_admin_document_declares_them_too() -> None:
    admin = yaml.safe_load((REPO_ROOT / "schemas" / "admin.yaml").read_text())
    assert admin["security"] == [{"bearerAuth": []}, {"teamKey": []}]
    assert set(admin["components"]["securitySchemes"]) == {"bearerAuth", "teamKey"}


def test_a_verified_token_is_reused_until_its_expiry_and_no_longer() -> None:
    """Verifying a token costs more than the rest of a key read, so a verified one is kept a few seconds,
    never past its `exp` and never past the JWKS refresh interval."""
    from generator.identity.authenticate import VerifiedTokens
    from generator.identity.principal import Principal

    cache = VerifiedTokens(30)
    soon = Principal("alice", "user", claims={"exp": time.time() + 0.2})
    cache.put(b"a", soon)
    later = Principal("bob", "user", claims={"exp": time.time() + 3600})
    cache.put(b"b", later)
    assert cache.get(b"a") is soon and cache.get(b"b") is later
    time.sleep(0.3)
    assert cache.get(b"a") is None  # expired: verified again (and refused) next time
    assert cache.get(b"b") is later
    assert VerifiedTokens(0).get(b"a") is None
    off = VerifiedTokens(0)
    off.put(b"c", later)
    assert off.get(b"c") is None  # no caching when the verifier says so
