"""botocore failures as short reasons an operator can act on. botocore's own messages carry error codes,
resource names and endpoints, never credentials; we pass those on and add the usual fix."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

AWS_FAILURES = (BotoCoreError, ClientError)
DENIED = {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "UnauthorizedOperation"}
NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "404", "NotFound", "ResourceNotFoundException"}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a `ClientError` (a HEAD's is its HTTP status), or ''."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def reason(exc: BaseException) -> str:
    """What went wrong, in one clause, with the usual fix for the failures that have one."""
    code = error_code(exc)
    if code in DENIED:
        return f"access denied ({code}): grant this service's AWS identity the permission"
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{code}: {message}" if message else code
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"{exc}: provide credentials (an instance or task role, AWS_PROFILE, or AWS_ACCESS_KEY_ID)"
    if isinstance(exc, NoRegionError):
        return "no AWS region configured: set the region setting or AWS_DEFAULT_REGION"
    if isinstance(exc, EndpointConnectionError):
        return f"{exc}: check the network, the region and AWS_ENDPOINT_URL"
    return str(exc)
