"""boto3 clients made one way: short timeouts and few retries, so a wrong endpoint, region or network fails
the start-up within seconds instead of hanging on botocore's defaults (60 s reads, retried)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Standard retries (throttling, 5xx) but few of them; a connect that takes seconds is already a failure.
CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard", "max_attempts": 3})


def client(service: str, region: str = "") -> Any:
    """A client for `service` in `region` (empty: boto3's own choice, AWS_DEFAULT_REGION or the profile).

    boto3 reads AWS_ENDPOINT_URL (tests: moto's server) and the credentials chain itself."""
    return boto3.session.Session().client(service, region_name=region or None, config=CONFIG)
