"""Render a page in headless Chromium and return the DOM its scripts built.

Swagger UI and other static pages are built by JavaScript; only a real browser shows whether they work.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def render_dom(url: str, budget_ms: int = 8000) -> str:
    """Load ``url``, let its scripts run for ``budget_ms`` of virtual time, return the serialized DOM."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found. Run `./dev test`, which installs it (apt package chromium)."
        )
    with tempfile.TemporaryDirectory(prefix="test-chromium-") as profile:
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            # Containers often have a small /dev/shm; loopback pages must not go through a proxy.
            "--disable-dev-shm-usage",
            "--no-proxy-server",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=budget_ms / 1000 + 60)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"chromium timed out rendering {url}:\n{_tail(exc.stderr)}") from None
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"chromium failed ({done.returncode}) rendering {url}:\n{_tail(done.stderr)}")
    return done.stdout


def _tail(stderr: str | bytes | None, lines: int = 30) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr or ""
    return "\n".join(text.splitlines()[-lines:])
