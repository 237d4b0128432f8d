"""boto3 clients per account (the account's own keys when the configuration gives them, else boto3's chain),
and AWS failures as the problems a client can act on: throttling is 429, an unreachable or failing service
503, a name already taken 409, a refusal 403. Never a 500 for something AWS said."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from generator.aws.clients import CONFIG
from generator.datasets.config import Account, DatasetsConfig
from generator.errors import Problem

log = logging.getLogger("generator.datasets")
S3_CONFIG = CONFIG.merge(Config(signature_version="s3v4"))
THROTTLED = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
                       "SlowDown", "TooManyRequestsException", "RequestThrottled", "LimitExceeded",
                       "LimitExceededException"})
UNAVAILABLE = frozenset({"ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalFailure",
                         "ServiceFailure", "InternalServerError"})
TAKEN = frozenset({"BucketAlreadyExists", "BucketAlreadyOwnedByYou", "EntityAlreadyExists",
                   "ResourceAlreadyExistsException"})
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
                    "SignatureDoesNotMatch"})


class Clients:
    """One client per (account, service), made on first use and kept (boto3 clients are thread-safe).

    Clients come from one boto3 session per process, so the service models are parsed once (a fresh session
    per client costs a tenth of a second or more each); an account's own keys are passed per client."""

    _session: boto3.session.Session | None = None
    _session_lock = threading.Lock()

    def __init__(self, config: DatasetsConfig) -> None:
        self.config = config
        self._made: dict[tuple[str, str], Any] = {}

    def for_account(self, account: Account, service: str) -> Any:
        return self._client((account.name, service), service, account.region, account.akid, account.secret)

    def metadata_s3(self) -> Any:
        c = self.config
        return self._client(("", "s3"), "s3", c.metadata_region, c.metadata_akid, c.metadata_secret)

    def _client(self, key: tuple[str, str], service: str, region: str, akid: str, secret: str) -> Any:
        found = self._made.get(key)
        if found is not None:
            return found
        with Clients._session_lock:  # a boto3 session is not thread-safe; its clients are
            if Clients._session is None:
                Clients._session = boto3.session.Session()
            keys = {"aws_access_key_id": akid, "aws_secret_access_key": secret} if akid and secret else {}
            found = self._made.setdefault(key, Clients._session.client(
                service, region_name=region or None, config=S3_CONFIG if service == "s3" else CONFIG, **keys))
        return found


def code_of(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def problem_for(error: Exception, doing: str) -> Problem:
    """The problem to answer when AWS failed while `doing` (a phrase: 'creating bucket x')."""
    if isinstance(error, ClientError):
        code = code_of(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in THROTTLED or status == 429:
            return Problem(429, "Too Many Requests", f"AWS is throttling requests ({code}) while {doing}; "
                                                     "try again shortly", headers={"Retry-After": "5"})
        if code in TAKEN:
            return Problem(409, "Conflict", f"Already exists ({code}) while {doing}")
        if code in DENIED or status == 403:
            return Problem(403, "Forbidden", f"AWS refused access ({code}) while {doing}: check the account's "
                                             "credentials and policy")
        if code in UNAVAILABLE or status >= 500:
            return Problem(503, "Service Unavailable", f"AWS is unavailable ({code}) while {doing}; try again "
                                                       "shortly", headers={"Retry-After": "5"})
        log.warning("AWS answered %s while %s", code, doing)
        return Problem(502, "Bad Gateway", f"AWS answered {code} while {doing}")
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        log.error("no AWS credentials while %s", doing)
        return Problem(503, "Service Unavailable", f"No AWS credentials while {doing}: give the account akid and "
                                                   "secret in DATASETS_CONFIG, or credentials to the service")
    if isinstance(error, ConnectionError | HTTPClientError | BotoCoreError):
        log.warning("AWS unreachable while %s: %s", doing, type(error).__name__)
        return Problem(503, "Service Unavailable", f"AWS cannot be reached while {doing}; try again shortly",
                       headers={"Retry-After": "5"})
    raise TypeError(f"not an AWS error: {type(error).__name__}")


@contextmanager
def aws(doing: str) -> Iterator[None]:
    """Run AWS calls; their failures leave as problems."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise problem_for(error, doing) from error
