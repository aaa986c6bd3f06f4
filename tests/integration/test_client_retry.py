"""The CLI's HTTP client rides out a web restart: `podium submit --wait` and the demo's baseline poster, both in flight."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import select

from podium.cli.baseline import baseline_row, ensure_user
from podium.cli.client import PodiumClient
from podium.core.config import BASELINE_USER
from podium.core.db import Database
from podium.core.models import Submission, User
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn


def _rows(settings) -> list[tuple[str, str]]:
    db = Database(settings.database_url)
    try:
        with db.session() as s:
            query = select(User.username, Submission.status).join(User, User.id == Submission.user_id)
            return [tuple(r) for r in s.execute(query.order_by(Submission.id)).all()]
    finally:
        db.dispose()


def test_submit_wait_and_baseline_survive_web_restarts(tmp_path):
    settings = live.settings_for(tmp_path / "var")
    tiny = write_tiny_bundle(tmp_path / "tiny")
    tokens = live.prepare_database(settings, [tiny], {"alice": "student"})
    stack = live.Stack(settings)
    try:
        stack.start_web()
        student_model, baseline_model = tmp_path / "student.pt", tmp_path / "baseline.pt"
        student_model.write_bytes(scripted_bytes(small_cnn(seed=1, in_shape=(1, 8, 8), num_classes=3)))
        baseline_model.write_bytes(scripted_bytes(small_cnn(seed=2, in_shape=(1, 8, 8), num_classes=3)))
        baseline_client = PodiumClient(stack.url, ensure_user(settings))

        # 1. The web is down when both uploads start: they are retried until it is back.
        stack.kill("web", signal.SIGTERM)
        env = dict(os.environ, PODIUM_URL=stack.url, PODIUM_TOKEN=tokens["alice"])
        submit = subprocess.Popen([sys.executable, "-m", "podium.cli", "submit", str(student_model),
                                   "--challenge", "tiny", "--wait"], env=env, cwd=live.REPO, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        result: dict = {}
        poster = threading.Thread(target=lambda: result.update(
            score=baseline_row(baseline_client, "tiny", baseline_model, open(os.devnull, "w"), give_up_s=300)))
        poster.start()
        time.sleep(2)
        stack.start_web()
        live.wait_until(lambda: len(_rows(settings)) == 2, 60, "both uploads should arrive once the web is back")

        # 2. Restarted while both wait for their scores (no worker yet, so they are still queued).
        stack.kill("web", signal.SIGTERM)
        time.sleep(3)
        stack.start_web()
        stack.start_worker()
        out, err = submit.communicate(timeout=240)
        poster.join(240)
        assert submit.returncode == 0, out + err
        assert "scored: public" in out, out + err
        assert not poster.is_alive() and result.get("score") is not None, result
        assert sorted(_rows(settings)) == [("alice", "scored"), (BASELINE_USER, "scored")]
    finally:
        stack.stop()
