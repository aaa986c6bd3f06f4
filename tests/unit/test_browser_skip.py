"""`make test` on a machine without chromium: the browser tests are skipped with one clear line; in CI that is an error."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support import live

BROWSER_TESTS = ["tests/integration/test_browser_uploads.py", "tests/integration/test_browser_teams.py"]


def _pytest(**env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *BROWSER_TESTS],
                          capture_output=True, text=True, cwd=live.REPO, timeout=300,
                          env={**os.environ, "PODIUM_CHROMIUM": "/nonexistent/chromium", **env})


def test_without_chromium_one_line_says_why_and_how():
    out = _pytest(PODIUM_REQUIRE_BROWSER="")
    assert out.returncode == 0, out.stdout + out.stderr
    said = [line for line in out.stdout.splitlines() if "browser tests skipped" in line]
    assert len(said) == 1, out.stdout
    assert "/nonexistent/chromium is missing" in said[0] and "apt-get install chromium" in said[0]
    assert " passed" not in out.stdout and " skipped" in out.stdout


def test_ci_refuses_to_skip_them():
    out = _pytest(PODIUM_REQUIRE_BROWSER="1")
    assert out.returncode != 0
    assert "browser tests cannot run" in out.stdout + out.stderr
