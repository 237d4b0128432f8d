"""The container's health check: `python -m generator.healthcheck` exits 0 while the service answers.

`/health` answers without credentials in every mode (probes send none), so the check needs no token; a
token that is set (the first of AUTH_TOKENS) is sent anyway, so an older service that asks for one passes
too. HEALTHCHECK_URL picks another probe, e.g. `/ready` (which also asks the database)."""

from __future__ import annotations

import os
import sys
import urllib.request

URL = os.environ.get("HEALTHCHECK_URL", "http://127.0.0.1:8000/health")


def main() -> int:
    token = os.environ.get("AUTH_TOKENS", "").split(",")[0].strip()
    request = urllib.request.Request(URL, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=4):
            return 0
    except OSError:  # refused, timed out, or an HTTP error status (urllib's HTTPError is an OSError)
        return 1


if __name__ == "__main__":
    sys.exit(main())
