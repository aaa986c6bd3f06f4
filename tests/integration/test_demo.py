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
import requests

from tests.support import live
from tests.support.models import scripted_bytes, small_cnn
from tests.support.processes import as_a_background_job


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
    # Started as a script's background job (SIGINT ignored): Ctrl-C, sent below, must stop it all the same.
    demo = subprocess.Popen([sys.executable, "-m", "podium.cli", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=live.REPO,
                            preexec_fn=as_a_background_job)
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
        assert requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=10).headers["Content-Type"] == \
            "image/vnd.microsoft.icon"
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=90)
        lines.append(rest)
    assert live.wait_until(lambda: not _podium_pids(data_dir), 30, "demo left processes running", 0.5)
    output = "".join(lines)
    assert "stopping ..." in output
    assert not [line for line in output.splitlines() if "ERROR" in line or "Traceback" in line], output


def test_demo_accounts_are_kept_across_restarts(tmp_path):
    """Same data dir, same token (kept in the data dir, owner-only); the student is in the demo course; passwords pass."""
    from sqlalchemy import select

    from podium.cli.demo import DEMO_INSTRUCTOR, DEMO_STUDENT, TOKEN_FILE, demo_accounts
    from podium.core.db import Database
    from podium.core.models import Course, User
    from podium.server.auth import create_user, verify_password
    from podium.server.passwords import check_password
    settings = live.settings_for(tmp_path / "var")
    from podium.cli import admin
    admin.db_upgrade(settings)
    db = Database(settings.database_url)
    with db.session() as s:  # an account from an older demo, whose password was its name
        create_user(s, "student", "student", password="student")
    code, token = demo_accounts(settings)
    assert demo_accounts(settings) == (code, token)
    token_file = settings.data_dir / TOKEN_FILE
    assert token_file.read_text().strip() == token and token_file.stat().st_mode & 0o077 == 0
    with db.session() as s:
        student = s.scalar(select(User).where(User.username == "student"))
        instructor = s.scalar(select(User).where(User.username == "instructor"))
        course = s.scalar(select(Course).where(Course.join_code == code))
        assert student.course_id == course.id and course.name == "Demo course"
        assert verify_password(student, DEMO_STUDENT[1]) and verify_password(instructor, DEMO_INSTRUCTOR[1])
        assert instructor.is_instructor and not student.is_instructor
    for name, password in (DEMO_INSTRUCTOR, DEMO_STUDENT):
        check_password(password, name)  # the demo's passwords meet the policy the register form applies
    token_file.write_text("pod_revoked-or-lost\n")  # a token that no longer works is replaced
    _, fresh = demo_accounts(settings)
    assert fresh != token and token_file.read_text().strip() == fresh
    db.dispose()


@pytest.mark.slow
def test_demo_stops_on_sigterm_in_the_middle_of_building(tmp_path):
    """SIGTERM while the spoken-commands bundle is being rendered by its worker pool: the demo still stops."""
    data_dir = tmp_path / "var"
    env = dict(os.environ, PODIUM_DATA_DIR=str(data_dir), PODIUM_DEMO_CHALLENGES="spoken-commands",
               PYTHONUNBUFFERED="1")
    env.pop("PODIUM_DATABASE_URL", None)
    env.pop("PODIUM_BROKER_URL", None)
    demo = subprocess.Popen([sys.executable, "-m", "podium.cli", "demo", "--port", str(live.free_port())], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=live.REPO)
    assert "building bundled challenges" in demo.stdout.readline()
    live.wait_until(lambda: len(_podium_pids(data_dir)) > 1, 60, "the build's worker pool did not start", 0.2)
    demo.send_signal(signal.SIGTERM)
    out, _ = demo.communicate(timeout=120)  # it used to wait forever on a pool worker stuck writing its result
    assert "stopping ..." in out and "Traceback" not in out, out
    assert live.wait_until(lambda: not _podium_pids(data_dir), 30, "demo left processes running", 0.5)
