"""RDS IAM authentication: the password of each new database connection is a fresh token.

A token is a SigV4-presigned request valid for 15 minutes, signed with the service's current AWS
credentials (an instance or task role rotates them), so one is made per connection, never once at start-up:
a pooled connection opened an hour later needs its own. Making one is local signing, with no call to AWS.

RDS accepts IAM tokens only over TLS: `models/engine.py` adds `sslmode=require` unless the URL sets one."""

from __future__ import annotations

from generator.aws.clients import client
from generator.aws.errors import AWS_FAILURES, reason
from generator.errors import StartupError


class IamTokens:
    """`tokens(host, port, user)` → a token to use as the password. Built at start-up, where a missing
    region or missing credentials stop the boot instead of failing every connection later."""

    def __init__(self, region: str = "") -> None:
        try:
            self._client = client("rds", region)
            self.region = region or self._client.meta.region_name
            self("localhost", 5432, "check")  # no credentials: fail now, not at the first connection
        except AWS_FAILURES as exc:
            raise StartupError(f"RDS IAM authentication (AWS_DB_USE_IAM_ROLE) cannot sign tokens: {reason(exc)}. "
                               "Set AWS_DB_REGION_IAM_ROLE and give the service AWS credentials.") from None

    def __call__(self, host: str, port: int, user: str) -> str:
        return str(self._client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user,
                                                       Region=self.region))
