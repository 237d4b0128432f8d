"""The container's health check: `python -m generator.healthcheck` exits 0 while the service answers.

In production `/health` requires credentials like every route (unless PUBLIC_PROBES=true), so the first
of AUTH_TOKENS is sent when set; without one (a service on JWTs only), the 401 a live service answers
proves it serves. A token that is sent and refused is unhealthy: the configuration is wrong.
HEALTHCHECK_URL picks another probe, e.g. `/ready` (which also asks the database)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8000/health")


def main() -> int:
    token = os.environ.get("AUTH_TOKENS", "").split(",")[0].strip()
    request = urllib.request.Request(URL, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=4):
            return 0
    except urllib.error.HTTPError as error:
        return 0 if error.code == 401 and not token else 1
    except OSError:  # refused or timed out
        return 1


if __name__ == "__main__":
    sys.exit(main())
