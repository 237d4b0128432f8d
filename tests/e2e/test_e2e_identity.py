"""Bearer JWTs against a real production process, with the identity provider's JWKS served on loopback by
this test (a tiny http.server in a thread) so its keys can rotate while the service runs.

The refetch interval (JWT_JWKS_MIN_REFRESH_SECONDS) and cache age (JWT_JWKS_CACHE_SECONDS) are set to seconds
instead of a minute, so rotation shows in seconds; every wait is bounded. SQLite only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.e2e.helpers import TokenLiveServer, assert_problem, client, last_run_log

Payload = Callable[[str], dict[str, Any]]
SERVICE_TOKEN = "service-token-for-the-probe"
AUDIENCE, ISSUER = "drg-e2e", "https://idp.e2e.example"
MIN_REFRESH_S, CACHE_S = 1.0, 3.0
WAIT_S = 15.0  # every poll below gives up after this
OLD_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(private: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    return {**json.loads(algorithm.to_jwk(private.public_key())), "kid": kid, "use": "sig"}


def token(private: Any, kid: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "ann", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 600,
               "groups": ["G_TEAM_PLATFORM_ADMIN"], **claims}  # admin: authorization is not tested here
    algorithm = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
    return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": kid})


class Jwks:
    """The identity provider's key set on 127.0.0.1: `keys` may be replaced at any time; `fetches` counts
    GETs of /jwks; GET /slow answers after `slow_seconds` (a provider that hangs)."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.slow_seconds = 5.0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/slow":
                    time.sleep(owner.slow_seconds)
                with owner.lock:
                    owner.fetches += self.path == "/jwks"
                    body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Jwks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def environment(jwks_url: str, **extra: str) -> dict[str, str]:
    return {"APP_ENV": "production", "AUTH_TOKENS": SERVICE_TOKEN, "JWT_JWKS_URL": jwks_url,
            "JWT_AUDIENCE": AUDIENCE, "JWT_ISSUER": ISSUER, "JWT_JWKS_MIN_REFRESH_SECONDS": str(MIN_REFRESH_S),
            "JWT_JWKS_CACHE_SECONDS": str(CACHE_S), "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost", **extra}


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    with Jwks() as served:
        served.keys = [public_jwk(OLD_KEY, "old")]
        yield served


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, jwks: Jwks, load_payload: Payload) -> Iterator[TokenLiveServer]:
    workdir = tmp_path_factory.mktemp("identity")
    server = TokenLiveServer(f"sqlite:///{workdir}/db.sqlite3", workdir, environment(f"{jwks.url}/jwks"),
                             token=SERVICE_TOKEN)
    server.start()
    try:
        with client(server, SERVICE_TOKEN) as http:
            generated = http.post("/generator", json=load_payload("default.json"))
            assert generated.status_code == 201, generated.text
        yield server
    finally:
        server.stop()


def poll(request: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool]) -> httpx.Response:
    """Repeat `request` until `done` holds, for at most WAIT_S; the last response either way."""
    deadline = time.monotonic() + WAIT_S
    while True:
        response = request()
        if done(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def assert_invalid_token(response: httpx.Response, presented: str) -> None:
    assert_problem(response, 401)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"'), challenge
    assert presented not in response.text and presented not in challenge


def test_key_rotation_accepts_the_new_key_and_drops_the_removed_one(service: TokenLiveServer, jwks: Jwks) -> None:
    old, new = token(OLD_KEY, "old"), token(NEW_KEY, "new")
    with client(service) as http:
        assert http.get("/people", headers={"Authorization": f"Bearer {old}"}).status_code == 200

        # The provider adds a key: a token under the unknown kid makes the service refetch the set.
        jwks.keys = [public_jwk(OLD_KEY, "old"), public_jwk(NEW_KEY, "new")]
        accepted = poll(lambda: http.get("/people", headers={"Authorization": f"Bearer {new}"}),
                        lambda r: r.status_code == 200)
        assert accepted.status_code == 200, accepted.text
        created = http.post("/people", json={"name": "Signed by the new key"},
                            headers={"Authorization": f"Bearer {new}"})
        assert created.status_code == 201, created.text

        # The provider removes the old key: once the cached set is refetched, the old kid is refused.
        jwks.keys = [public_jwk(NEW_KEY, "new")]
        refused = poll(lambda: http.get("/people", headers={"Authorization": f"Bearer {old}"}),
                       lambda r: r.status_code == 401)
        assert_invalid_token(refused, old)
        assert http.get("/people", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    log = last_run_log(service)
    assert old not in log and new not in log, "a token was logged"


def test_unknown_kids_refetch_at_most_once_per_interval(service: TokenLiveServer, jwks: Jwks) -> None:
    time.sleep(MIN_REFRESH_S)  # whatever an earlier test fetched, the next unknown kid may refetch once
    before = jwks.fetches
    started = time.monotonic()
    with client(service) as http:
        for n in range(20):
            forged = token(NEW_KEY, f"made-up-{n}")
            assert_invalid_token(http.get("/people", headers={"Authorization": f"Bearer {forged}"}), forged)
    elapsed = time.monotonic() - started
    allowed = 1 + int(elapsed / MIN_REFRESH_S) + 1  # one now, one per interval that passed (and one of slack)
    assert jwks.fetches - before <= allowed, (jwks.fetches - before, elapsed)


@pytest.mark.parametrize(("name", "make"), [
    ("expired", lambda: token(NEW_KEY, "new", exp=int(time.time()) - 3600)),
    ("not-yet-valid", lambda: token(NEW_KEY, "new", nbf=int(time.time()) + 3600)),
    ("wrong-audience", lambda: token(NEW_KEY, "new", aud="another-app")),
    ("wrong-issuer", lambda: token(NEW_KEY, "new", iss="https://evil.example")),
    ("forged", lambda: token(ec.generate_private_key(ec.SECP256R1()), "new")),
    ("alg-none", lambda: jwt.encode({"sub": "ann", "exp": int(time.time()) + 60}, None, algorithm="none",
                                    headers={"kid": "new"})),
], ids=lambda value: value if isinstance(value, str) else "")
def test_bad_tokens_are_refused_on_every_kind_of_route(service: TokenLiveServer, jwks: Jwks, name: str,
                                                         make: Callable[[], str]) -> None:
    jwks.keys = [public_jwk(NEW_KEY, "new")]
    presented = make()
    with client(service) as http:
        for method, path in (("GET", "/people"), ("POST", "/generator"), ("GET", "/openapi.json"),
                             ("GET", "/health"), ("GET", "/ui/")):
            response = http.request(method, path, headers={"Authorization": f"Bearer {presented}"},
                                    json={} if method == "POST" else None)
            assert_invalid_token(response, presented)


def test_the_served_documents_declare_the_security_schemes(service: TokenLiveServer) -> None:
    with client(service, SERVICE_TOKEN) as http:
        for path in ("/openapi.json", "/admin/openapi.json"):
            document = http.get(path)
            assert document.status_code == 200, document.text
            schemes = document.json()["components"]["securitySchemes"]
            assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer",
                                             "bearerFormat": "JWT"}
            assert schemes["teamKey"] == {**schemes["teamKey"], "type": "apiKey", "in": "header",
                                          "name": "X-Auth-Token"}
            security = document.json()["security"]  # either credential (the generated document also lists
            assert {"bearerAuth": []} in security and {"teamKey": []} in security  # {} until told the mode)


def test_a_hanging_jwks_answers_503_within_the_timeout(tmp_path: Path, jwks: Jwks) -> None:
    server = TokenLiveServer(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path,
                             environment(f"{jwks.url}/slow", JWT_JWKS_TIMEOUT_SECONDS="1"), token=SERVICE_TOKEN)
    server.start()
    try:
        presented = token(NEW_KEY, "new")
        with client(server) as http:
            answers: list[httpx.Response] = []
            waiting = threading.Thread(target=lambda: answers.append(
                http.get("/health", headers={"Authorization": f"Bearer {presented}"})))
            started = time.monotonic()
            waiting.start()
            time.sleep(0.3)  # the fetch is under way; the event loop must still serve others
            health = http.get("/health", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
            assert health.status_code == 200 and time.monotonic() - started < 1.0, "the fetch blocked the loop"
            waiting.join(WAIT_S)
            assert answers, "no answer while the key set hangs"
            assert time.monotonic() - started < 4.0
        body = assert_problem(answers[0], 503)
        assert presented not in json.dumps(body)
    finally:
        server.stop()
