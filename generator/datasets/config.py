"""The datasets configuration: a JSON file named by DATASETS_CONFIG, in the seed's shape.

    {"metadataRepository": {"type": "s3", "bucket": "...", "region": "..."},
     "accounts": {"<account>": {"region": "...", "org": "...", "akid": "...", "secret": "..."}},
     "maxAttachmentSize": 33554432,
     "token": "<sha256 hex of the pre-shared key>"}

A configuration that is missing or wrong never stops the service: `load()` raises `ConfigurationMissing` with
a sentence saying what to set, and `/v1/ds/...` answers 503 with it. Secrets are never part of a message."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "DATASETS_CONFIG"
DEFAULT_ATTACHMENT_SIZE = 32 * 1024 * 1024
# dataset-<account>-<uuid> must be a valid bucket name (3-63 characters): 8 + account + 1 + 36.
ACCOUNT = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,16}[a-z0-9])?")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ConfigurationMissing(Exception):
    """Datasets cannot be served; the message says what to set."""


@dataclass(frozen=True)
class Account:
    name: str
    region: str
    org: str
    akid: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class DatasetsConfig:
    metadata_bucket: str
    metadata_region: str
    accounts: Mapping[str, Account]
    token_sha256: str = field(default="", repr=False)
    max_attachment_size: int = DEFAULT_ATTACHMENT_SIZE
    metadata_akid: str = field(default="", repr=False)
    metadata_secret: str = field(default="", repr=False)


def load(environ: Mapping[str, str] | None = None) -> DatasetsConfig:
    env = os.environ if environ is None else environ
    name = env.get(ENV, "").strip()
    if not name:
        raise ConfigurationMissing(f"Datasets are not configured: set {ENV} to the path of a JSON file with "
                                   "metadataRepository {type: s3, bucket, region}, accounts and token")
    try:
        raw = json.loads(Path(name).read_text())
    except OSError as exc:
        raise ConfigurationMissing(f"{ENV} names {name!r}, which cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigurationMissing(f"{ENV} file {name!r} is not valid JSON: {exc}") from None
    return parse(raw, name)


def parse(raw: Any, source: str = ENV) -> DatasetsConfig:
    def wrong(what: str) -> ConfigurationMissing:
        return ConfigurationMissing(f"{ENV} file {source!r}: {what}")

    if not isinstance(raw, dict):
        raise wrong("must hold a JSON object")
    repository = raw.get("metadataRepository")
    if not isinstance(repository, dict) or repository.get("type", "s3") != "s3" or not _text(repository, "bucket"):
        raise wrong('set "metadataRepository": {"type": "s3", "bucket": "<bucket>", "region": "<region>"}')
    accounts_raw = raw.get("accounts")
    if not isinstance(accounts_raw, dict) or not accounts_raw:
        raise wrong('set "accounts": {"<account>": {"region": "<region>", "org": "<org>"}}')
    accounts = {}
    for account, body in accounts_raw.items():
        if not ACCOUNT.fullmatch(account):
            raise wrong(f"account name {account!r} must be 1-18 lowercase letters, digits or hyphens (it is part "
                        "of bucket names)")
        if not isinstance(body, dict):
            raise wrong(f"account {account!r} must be an object with region, org, akid, secret")
        accounts[account] = Account(account, _text(body, "region"), _text(body, "org") or account,
                                    _text(body, "akid"), _text(body, "secret"))
    token = raw.get("token", "")
    if not isinstance(token, str) or (token and not SHA256_HEX.fullmatch(token.lower())):
        raise wrong('"token" must be the SHA-256 of the pre-shared key, as 64 hexadecimal digits')
    size = raw.get("maxAttachmentSize", DEFAULT_ATTACHMENT_SIZE)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise wrong('"maxAttachmentSize" must be a positive number of bytes')
    return DatasetsConfig(_text(repository, "bucket"), _text(repository, "region"), accounts, token.lower(), size,
                          _text(repository, "akid"), _text(repository, "secret"))


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key, "")
    return value.strip() if isinstance(value, str) else ""
