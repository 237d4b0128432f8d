"""The signing keys of bearer JWTs: a JWKS fetched from a URL (or read from a file), cached, thread-safe.

`cached(kid)` answers from memory without blocking, so the event loop can call it on every request; when it
cannot answer (no key set yet, the set is too old, or the kid is unknown), `keys(kid)` loads the set again,
and is meant to run in a worker thread (it blocks for at most the fetch timeout). An unknown kid refetches
at most once per `min_refresh_seconds`, so a stream of forged kids cannot make the service hammer the
identity provider; a kid that is still unknown after the refetch is rejected. A key set older than
`max_age_seconds` is refetched before use, so a key the provider removed stops being accepted; if that
refetch fails, the old set serves for at most another `max_age_seconds` (an identity provider's short outage
does not take the service down), then requests get 503 until a fetch succeeds.

Only asymmetric keys are taken (RSA, EC); `oct` keys and keys marked `use: enc` are skipped."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWKError

log = logging.getLogger("generator.identity")
MAX_JWKS_BYTES = 1024 * 1024
RETRY_AFTER_FAILURE_SECONDS = 5.0  # a failed fetch is retried no sooner than this (or min_refresh, if shorter)
CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class JwksUnavailable(Exception):
    """The key set could not be loaded (network, timeout, bad document); the request gets 503."""


@dataclass(frozen=True)
class KeySet:
    keys: Mapping[str, tuple[PyJWK, ...]]  # by kid; a kid may name keys of several types
    loaded_at: float


class JwksCache:
    """One key set, replaced whole on every successful load; readers never take a lock."""

    def __init__(self, load: Callable[[], bytes], source: str, *, min_refresh_seconds: float = 60.0,
                 max_age_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._load, self.source = load, source
        self.min_refresh_seconds, self.max_age_seconds = min_refresh_seconds, max_age_seconds
        self._clock = clock
        self._keys: KeySet | None = None
        self._last_attempt: float | None = None
        self._last_failed = False
        self._lock = threading.Lock()  # held while loading, never by `cached`

    @classmethod
    def from_url(cls, url: str, *, timeout_seconds: float, **options: Any) -> JwksCache:
        check_jwks_url(url)

        def load() -> bytes:
            request = urllib.request.Request(url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310 (checked)
                body: bytes = response.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError(f"the key set is larger than {MAX_JWKS_BYTES} bytes")
            return body

        return cls(load, _redacted(url), **options)

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> JwksCache:
        file = Path(path)
        return cls(file.read_bytes, str(file), **options)

    def cached(self, kid: str) -> tuple[PyJWK, ...] | None:
        """The keys named `kid` from a fresh key set, or None when only `keys()` can answer."""
        current = self._keys
        if current is None or self._clock() - current.loaded_at >= self.max_age_seconds:
            return None
        return current.keys.get(kid)

    def keys(self, kid: str) -> tuple[PyJWK, ...]:
        """The keys named `kid`, loading the set if needed (blocking: call it in a worker thread); empty when
        the kid is unknown even after a refetch. Raises `JwksUnavailable` when no usable set can be had."""
        with self._lock:  # one load at a time; whoever waited sees the set the other thread loaded
            now = self._clock()
            current = self._keys
            fresh = current is not None and now - current.loaded_at < self.max_age_seconds
            if fresh and current is not None and kid in current.keys:
                return current.keys[kid]
            if fresh and not self._may_load(now):
                return ()  # an unknown kid, and the set was loaded a moment ago
            if not fresh and not self._may_load(now):
                return self._stale(current, now, kid)
            self._last_attempt = now
            try:
                loaded = KeySet(parse_jwks(self._load()), self._clock())
            except Exception as exc:  # noqa: BLE001 (any failure to load is the same to the caller)
                self._last_failed = True
                log.warning("could not load the JWT key set from %s: %s", self.source, _reason(exc))
                return self._stale(current, now, kid)
            self._last_failed = False
            self._keys = loaded
            log.info("loaded %d JWT signing key(s) from %s", sum(map(len, loaded.keys.values())), self.source)
            return loaded.keys.get(kid, ())

    def _may_load(self, now: float) -> bool:
        if self._last_attempt is None:
            return True
        wait = self.min_refresh_seconds
        if self._last_failed:
            wait = min(wait, RETRY_AFTER_FAILURE_SECONDS)
        return now - self._last_attempt >= wait

    def _stale(self, current: KeySet | None, now: float, kid: str) -> tuple[PyJWK, ...]:
        """After a failed (or not yet allowed) load: the old set while it is less than twice `max_age`."""
        if current is not None and now - current.loaded_at < 2 * self.max_age_seconds:
            return current.keys.get(kid, ())
        raise JwksUnavailable(f"the JWT key set from {self.source} could not be loaded")


def parse_jwks(document: bytes) -> dict[str, tuple[PyJWK, ...]]:
    """The usable keys of a JWKS document by kid; a document with none is an error (a provider that sends an
    empty set is misconfigured, and every token would be rejected as if forged)."""
    data = json.loads(document)
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWKS document (an object with a 'keys' list)")
    found: dict[str, list[PyJWK]] = {}
    for entry in data["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
            continue
        if entry.get("kty") not in ("RSA", "EC") or entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except (PyJWKError, ValueError, TypeError, KeyError):
            continue
        found.setdefault(entry["kid"], []).append(key)
    if not found:
        raise ValueError("the JWKS document has no usable signing key (RSA or EC, with a kid)")
    return {kid: tuple(keys) for kid, keys in found.items()}


def key_fits(key: PyJWK, algorithm: str) -> bool:
    """Whether `key` may verify a token signed with `algorithm`: the JWK's own `alg` if it has one, else its
    type (RSA for RS*/PS*, EC on the algorithm's curve for ES*)."""
    declared = key._jwk_data.get("alg")  # noqa: SLF001 (PyJWK keeps the JWK's members there)
    if isinstance(declared, str) and declared != algorithm:
        return False
    kty = key._jwk_data.get("kty")  # noqa: SLF001
    if algorithm.startswith(("RS", "PS")):
        return kty == "RSA"
    if algorithm in CURVES:
        return kty == "EC" and key._jwk_data.get("crv") == CURVES[algorithm]  # noqa: SLF001
    return False


def check_jwks_url(url: str) -> None:
    """https, or http to a loopback address (a sidecar or a test); anything else could be tampered with."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and parsed.hostname and _loopback(parsed.hostname):
        return
    raise ValueError("JWT_JWKS_URL must be an https URL (http only to a loopback address)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redacted(url: str) -> str:
    """The URL without user information or query, for logs."""
    parsed = urllib.parse.urlsplit(url)
    netloc = parsed.hostname or ""
    if parsed.port:
        netloc = f"{netloc}:{parsed.port}"
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
