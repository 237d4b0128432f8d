"""The container's health check: `python -m generator.healthcheck` exits 0 while the service answers.

In production every route needs credentials, so without a service token a 401 from `/health` still proves
the process is up and serving; with one (the first of AUTH_TOKENS) the answer must be 200."""

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
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
