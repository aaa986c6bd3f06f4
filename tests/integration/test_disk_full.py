"""A full disk: uploads answer 507 and leave no partial blob or row; grading fails with an infrastructure reason
that does not count against the student; everything works again once space is freed.

Real full file systems: two small tmpfs mounts (needs root), one for the web's blob spool, one for the worker's
blob cache, in front of an S3 store (moto over HTTP).
"""
from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from podium.core import states
from podium.core.db import Database
from podium.core.models import Submission
from podium.server.submissions import counts_against_limit
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.hosts import S3Server
from tests.support.models import scripted_bytes, small_cnn
from tests.support.processes import stop_leaving_nothing

BUCKET = "podium-full"


@pytest.fixture
def mounts(tmp_path):
    """Two 8 MB tmpfs file systems; skipped where mounting is not allowed."""
    made = []
    for name in ("web-cache", "worker-cache"):
        path = tmp_path / name
        path.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        made.append(path)
    yield made
    for path in made:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    try:
        with open(filler, "ab", buffering=0) as f:
            while True:
                f.write(b"\0" * 512)
    except OSError:
        pass
    return filler


def test_full_disk_gives_507_fails_grading_as_infrastructure_and_recovers(tmp_path, mounts, monkeypatch):
    web_cache, worker_cache = mounts
    s3 = S3Server().start()
    s3.make_bucket(BUCKET)
    for k, v in dict(s3.env(), PODIUM_STORAGE_URL=f"s3://{BUCKET}/blobs", PODIUM_CACHE_DIR=str(web_cache)).items():
        monkeypatch.setenv(k, v)
    settings = live.settings_for(tmp_path / "var").with_(storage_url=f"s3://{BUCKET}/blobs", s3_endpoint_url=s3.url,
                                                         cache_dir_override=web_cache)
    stack = live.Stack(settings)
    db = Database(settings.database_url)
    try:
        stack.tokens = live.prepare_database(settings, [write_tiny_bundle(tmp_path / "tiny")], {"ann": "student"})
        stack.start_web()
        stack.start_worker(PODIUM_CACHE_DIR=str(worker_cache))
        ann = live.Api(stack.url, stack.tokens["ann"])
        model = scripted_bytes(small_cnn(in_shape=(1, 8, 8), num_classes=3))

        # The worker's disk is full: it cannot fetch the test set or the model, which is never the student's fault.
        worker_filler = fill(worker_cache)
        sub_id = ann.submit("tiny", model).json()["id"]
        sub = ann.wait_finished(sub_id, 120)
        assert (sub["status"], sub["error"]) == ("failed", states.INFRA_ERROR), stack.log("worker")
        with db.session() as s:
            assert s.get(Submission, sub_id).failure_kind == states.FAILURE_INFRA
            assert not s.scalar(select(func.count()).select_from(Submission)
                                .where(Submission.id == sub_id, counts_against_limit()))
        assert "No space left on device" in stack.log("worker")

        # The web's disk is full: 507 with a clear message, no temporary file, no row.
        web_filler = fill(web_cache)
        with db.session() as s:
            before = s.scalar(select(func.count()).select_from(Submission))
        resp = ann.submit("tiny", scripted_bytes(small_cnn(seed=1, in_shape=(1, 8, 8), num_classes=3)))
        assert resp.status_code == 507, resp.text
        assert resp.json()["error"]["code"] == "storage_full"
        assert "storage is full" in resp.json()["error"]["message"]
        assert not any((web_cache / "blobs" / "tmp").glob("*"))  # no partial blob left in the spool
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Submission)) == before
        assert ann.get("/challenges/tiny").status_code == 200  # nothing else breaks
        assert live.Api(stack.url).get("/challenges/tiny/leaderboard").status_code == 200

        # Space comes back: uploads and grading work again, with no restart.
        web_filler.unlink()
        worker_filler.unlink()
        resp = ann.submit("tiny", scripted_bytes(small_cnn(seed=2, in_shape=(1, 8, 8), num_classes=3)))
        assert resp.status_code == 202, resp.text
        assert ann.wait_finished(resp.json()["id"], 120)["status"] == "scored", stack.log("worker")
    finally:
        db.dispose()
        stop_leaving_nothing(stack)
        s3.stop()
