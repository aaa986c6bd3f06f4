"""`podium backup DIR` during a burst of uploads, then `podium restore DIR` into an empty data dir: every
submission and score committed before the snapshot is there, and every referenced blob exists with its sha256."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time

from sqlalchemy import select

from podium.core import states
from podium.core.db import Database
from podium.core.models import Challenge, Score, Submission
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import scripted_bytes, small_cnn
from tests.support.processes import stop_leaving_nothing


def podium(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "podium.cli", *args], env=live.env_for(settings), cwd=live.REPO,
                          capture_output=True, text=True, timeout=300)


def rows(database_url: str) -> tuple[dict, dict, set[str]]:
    """(submission id -> status, submission id -> public score, every blob sha the rows name)."""
    db = Database(database_url)
    try:
        with db.session() as s:
            subs = {i: st for i, st in s.execute(select(Submission.id, Submission.status))}
            scores = dict(s.execute(select(Score.submission_id, Score.public_score)).all())
            shas = set(s.scalars(select(Submission.model_sha256)))
            for c in s.scalars(select(Challenge)):
                shas |= {x for x in (c.test_sha256, c.train_sha256, c.starter_sha256) if x}
        return subs, scores, shas
    finally:
        db.dispose()


def test_backup_under_a_burst_restores_everything_committed_before_it(tmp_path):
    settings = live.settings_for(tmp_path / "var")
    stack = live.Stack(settings)
    stack.tokens = live.prepare_database(settings, [write_tiny_bundle(tmp_path / "tiny")], {"ann": "instructor"})
    stack.start_web()
    stack.start_worker()
    api = live.Api(stack.url, stack.tokens["ann"])
    stop, accepted = threading.Event(), []

    def upload(seed: int) -> None:
        while not stop.is_set():  # distinct models, so every upload adds a blob
            r = api.submit("tiny", scripted_bytes(small_cnn(seed=seed, in_shape=(1, 8, 8), num_classes=3)))
            assert r.status_code == 202, r.text
            accepted.append(r.json()["id"])
            seed += 2

    try:
        threads = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        live.wait_until(lambda: len(accepted) >= 10, 120, "the burst did not start")
        before_subs, before_scores, _ = rows(settings.database_url)  # committed before the snapshot starts
        out = podium(settings, "backup", str(tmp_path / "backup"))
        assert out.returncode == 0, out.stderr
        time.sleep(1.0)  # uploads go on after the snapshot
        stop.set()
        for t in threads:
            t.join(60)
        assert len(accepted) > len(before_subs)
    finally:
        stop.set()
        stop_leaving_nothing(stack)

    restored = live.settings_for(tmp_path / "restored")
    out = podium(restored, "restore", str(tmp_path / "backup"))
    assert out.returncode == 0, out.stderr
    subs, scores, shas = rows(restored.database_url)
    assert set(before_subs) <= set(subs)
    for sub_id, status in before_subs.items():
        if status in states.FINISHED:
            assert subs[sub_id] == status
    assert before_scores.items() <= scores.items()
    for sha in shas:  # every blob a restored row names is in the restored store, intact
        path = restored.blob_dir / sha[:2] / sha
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert podium(restored, "db", "upgrade").returncode == 0  # a database at the schema's head, ready to serve
    # A second restore into the same, now full, data dir is refused and changes nothing.
    again = podium(restored, "restore", str(tmp_path / "backup"))
    assert again.returncode == 2 and "empty data dir" in again.stderr
    assert "not empty" in podium(settings, "backup", str(tmp_path / "backup")).stderr
