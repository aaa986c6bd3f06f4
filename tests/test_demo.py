"""`podium demo` as a newcomer runs it: prints URL and token, grades a submission, shows baselines, stops cleanly on Ctrl-C."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import live
from tests.models import scripted_bytes, small_cnn


def _podium_pids(data_dir: Path) -> list[int]:
    """Processes whose environment names this demo's data dir."""
    pids = []
    marker = f"PODIUM_DATA_DIR={data_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, digits_bundle):
    data_dir = tmp_path / "var"
    port = live.free_port()
    env = dict(os.environ, PODIUM_DATA_DIR=str(data_dir), PODIUM_DEMO_CHALLENGES="digits", PODIUM_BASELINE_QUICK="1",
               PYTHONUNBUFFERED="1")
    env.pop("PODIUM_DATABASE_URL", None)
    env.pop("PODIUM_BROKER_URL", None)
    demo = subprocess.Popen([sys.executable, "-m", "podium.cli", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=live.REPO)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        token = None
        while time.monotonic() < deadline and token is None:
            line = demo.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
            m = re.search(r"student token:\s+(\S+)", line)
            token = m.group(1) if m else None
        assert token, "no token printed:\n" + "".join(lines)
        assert any(f"http://127.0.0.1:{port}" in line for line in lines)

        api = live.Api(f"http://127.0.0.1:{port}", token)
        resp = api.submit("digits", scripted_bytes(small_cnn()))
        assert resp.status_code == 202
        assert api.wait_finished(resp.json()["id"], 120)["status"] == "scored"

        def baseline_row():
            rows = api.get("/challenges/digits/leaderboard").json()["rows"]
            return [r for r in rows if r["user"] == "baseline"]
        assert live.wait_until(baseline_row, 240, "no baseline row appeared", 1.0)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
    assert live.wait_until(lambda: not _podium_pids(data_dir), 30, "demo left processes running", 0.5)
