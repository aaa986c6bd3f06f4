"""Debian's chromium driven by Playwright, the one way every browser test starts it."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("PODIUM_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


MISSING = (f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`, as .ci/run does) "
           "to run them")
REQUIRE_ENV = "PODIUM_REQUIRE_BROWSER"  # set by .ci/run: there a missing browser fails the run instead


def browser_required() -> bool:
    """True where browser tests must run (CI): a missing chromium is then an error, not a skip."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def require_chromium() -> None:
    """Skip the test, saying how to get chromium, where this machine has none; fail instead where it is required."""
    if not CHROMIUM.exists():
        if browser_required():
            pytest.fail(f"{MISSING} ({REQUIRE_ENV} is set)")
        pytest.skip(MISSING)


@contextmanager
def chromium() -> Iterator:
    """A headless chromium browser for the duration of the block."""
    require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
