"""A Playwright page in Debian's Chromium, for tests that click through a page rather than only render it.

Playwright's own browser builds cannot be downloaded here (never run `playwright install`): the system
Chromium is launched by path. Every wait is bounded, so a page that never answers fails the test in seconds
instead of hanging it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Page, sync_playwright

from tests.support.chromium import CHROMIUM

LAUNCH_TIMEOUT_MS = 15_000
ACTION_TIMEOUT_MS = 5_000
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # Containers often have a small /dev/shm; loopback pages must not go through a proxy.
    "--disable-dev-shm-usage", "--no-proxy-server",
]  # fmt: skip


@contextmanager
def chromium_page(timeout_ms: int = ACTION_TIMEOUT_MS) -> Iterator[Page]:
    """A fresh headless page whose clicks, waits and navigations each time out after `timeout_ms`."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} not found. Run `./dev test`, which installs it (apt package chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             timeout=LAUNCH_TIMEOUT_MS)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            page.set_default_navigation_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
