"""Two worker "hosts" on one machine: separate working dirs, sharing only Redis, Postgres and an S3 endpoint."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from podium.core.db import Database
from podium.core.models import Challenge, Submission
from podium.core.split import public_mask
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.hosts import S3Server, claimed_by, cmdline_of, descendants, environ_of
from tests.support.live import require_postgres_and_redis
from tests.support.models import predict, scripted_bytes, small_cnn, trained_cnn

pytestmark = pytest.mark.postgres

BUCKET = "podium-dept"
PREFIX = "blobs"
BURST = 12


@pytest.fixture(scope="module")
def department(tmp_path_factory):
    """Web on one 'host', two workers on two more; each has its own data dir; the S3 store is the only shared disk."""
    require_postgres_and_redis()
    root = tmp_path_factory.mktemp("dept")
    s3 = S3Server().start()
    s3.make_bucket(BUCKET)
    redis = live.RedisServer(root / "redis").start()
    mp = pytest.MonkeyPatch()
    for k, v in dict(s3.env(), PODIUM_STORAGE_URL=f"s3://{BUCKET}/{PREFIX}").items():
        mp.setenv(k, v)
    stacks: list[live.Stack] = []
    try:
        with live.fresh_postgres_db() as db_url:
            def host(name: str) -> live.Stack:
                settings = live.settings_for(root / name, db_url, redis.url)
                stack = live.Stack(settings.with_(storage_url=f"s3://{BUCKET}/{PREFIX}", s3_endpoint_url=s3.url))
                stacks.append(stack)
                return stack
            web = host("web-host")
            tiny = write_tiny_bundle(root / "bundle", slug="tiny", n=300)
            web.tokens = live.prepare_database(web.settings, [tiny], {f"s{i}": "student" for i in range(BURST)})
            web.start_web()
            workers = [host("gpu-host-1"), host("gpu-host-2")]
            for i, stack in enumerate(workers):
                stack.start_worker(f"worker{i + 1}", queues="podium")
            for i, stack in enumerate(workers):
                live.wait_until(lambda: "ready" in stack.log(f"worker{i + 1}"), 60,  # noqa: B023 (called at once)
                                f"worker{i + 1} did not start: {stack.log(f'worker{i + 1}')[-2000:]}")
            yield {"web": web, "workers": workers, "s3": s3, "db_url": db_url, "bundle": tiny, "root": root}
            for stack in stacks:  # before the database is dropped
                stack.stop()
    finally:
        for stack in stacks:
            stack.stop()
        mp.undo()
        redis.stop()
        s3.stop()


def _models(bundle: Path) -> list[tuple[bytes, np.ndarray]]:
    with np.load(bundle / "data" / "train.npz") as train, np.load(bundle / "data" / "test.npz") as test:
        xt, yt, x = train["x"], train["y"], test["x"]
    nets = [trained_cnn(xt, yt, 3, steps=s, seed=s) for s in (3, 8, 25)] + [small_cnn(seed=5, in_shape=(1, 8, 8),
                                                                                      num_classes=3)]
    return [(scripted_bytes(net), predict(net, x)) for net in nets]


def test_burst_is_scored_correctly_by_both_hosts_fetching_the_test_set_once(department):
    """A burst spread over two hosts: exact scores, both hosts work, each downloads the held-out set once."""
    web, workers, s3 = department["web"], department["workers"], department["s3"]
    with np.load(department["bundle"] / "data" / "test.npz") as test:
        y = test["y"]
    mask = public_mask(y, 0.5, 3)
    models = _models(department["bundle"])
    expected = {}
    for i in range(BURST):
        model, pred = models[i % len(models)]
        resp = live.Api(web.url, web.tokens[f"s{i}"]).submit("tiny", model)
        assert resp.status_code == 202, resp.text
        expected[resp.json()["id"]] = float(np.mean(pred[mask] == y[mask]))
    for i, (sub_id, public) in enumerate(expected.items()):
        sub = live.Api(web.url, web.tokens[f"s{i}"]).wait_finished(sub_id, timeout_s=120)
        assert sub["status"] == "scored", (sub, workers[0].log("worker1")[-3000:], workers[1].log("worker2")[-3000:])
        assert sub["public_score"] == pytest.approx(public, abs=1e-12)

    db = Database(department["db_url"])
    try:
        with db.session() as s:
            test_sha = s.scalar(select(Challenge.test_sha256).where(Challenge.slug == "tiny"))
            rows = s.execute(select(Submission.id, Submission.worker, Submission.model_sha256)
                             .where(Submission.id.in_(list(expected)))).all()
    finally:
        db.dispose()

    # Both hosts took part (prefetch 1 spreads a burst), told apart by the process that claimed each row.
    trees = [descendants(stack.procs[f"worker{i + 1}"].pid) for i, stack in enumerate(workers)]
    by_host = [sum(1 for _, w, _ in rows if claimed_by(w, tree)) for tree in trees]
    assert sum(by_host) == BURST and min(by_host) >= 1, by_host

    # Storage credentials stay in the worker: the scoring sandbox's environment has none of them.
    sandboxes = [p for tree in trees for p in tree if "podium.worker.sandbox.zygote" in cmdline_of(p)]
    assert len(sandboxes) >= 2
    for pid in sandboxes:
        env = environ_of(pid)
        leaked = [k for k in env if k.startswith("AWS_") or k in ("PODIUM_SECRET_KEY", "PODIUM_DATABASE_URL",
                                                                   "PODIUM_BROKER_URL", "PODIUM_STORAGE_URL")]
        assert env and not leaked, leaked
    assert "AWS_SECRET_ACCESS_KEY" in environ_of(workers[0].procs["worker1"].pid)

    # The held-out set: one download per host, then served from each host's own cache.
    key = f"{PREFIX}/{test_sha[:2]}/{test_sha}"
    assert s3.count("GET", BUCKET, key) == 2
    for stack in workers:
        cached = stack.settings.cache_dir / "blobs" / test_sha[:2] / test_sha
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == test_sha
    # No host used a local blob directory: the object store is the only shared storage.
    for stack in [web, *workers]:
        assert not (stack.settings.data_dir / "blobs").exists()
    # Every model came from the store: fetched by the host that scored it, at most once per host.
    for sha in {m for _, _, m in rows}:
        assert 1 <= s3.count("GET", BUCKET, f"{PREFIX}/{sha[:2]}/{sha}") <= 2
