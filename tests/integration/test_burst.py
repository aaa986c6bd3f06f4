"""Deadline load: 300 submissions from 30 concurrent clients against the real web server, worker and Postgres."""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from podium.core.db import Database
from podium.core.models import Challenge, Score, Submission, User
from podium.core.split import public_mask
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import predict, scripted_bytes, small_cnn
from tests.support.processes import descendants, stop_leaving_nothing

CLIENTS = 30
PER_CLIENT = 10
SEEDS = 40
RECYCLE_AFTER = 200   # below the 300 uploads, so the pool child (and its sandbox) is replaced mid-burst


def pool_children(pid: int) -> set[int]:
    """The Celery worker's direct children: its pool processes."""
    return {int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()}


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
@pytest.mark.postgres
def test_burst_every_submission_scored_once_and_leaderboard_exact(tmp_path):
    if not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")
    bundle = write_tiny_bundle(tmp_path / "bundle-tiny")
    with np.load(bundle / "data" / "test.npz") as npz:
        x, y = npz["x"], npz["y"]
    mask = public_mask(y, 0.5, 3)
    models, expected = {}, {}
    for seed in range(SEEDS):
        net = small_cnn(seed=seed, in_shape=(1, 8, 8), num_classes=3)
        pred = predict(net, x)
        models[seed] = scripted_bytes(net)
        expected[seed] = (float(np.mean(pred[mask] == y[mask])), float(np.mean(pred[~mask] == y[~mask])))
    users = {f"s{i:02d}": "student" for i in range(CLIENTS)}
    redis = live.RedisServer(tmp_path / "redis").start()
    try:
        with live.fresh_postgres_db() as url:
            settings = live.settings_for(tmp_path / "var", url, redis.url)
            tokens = live.prepare_database(settings, [bundle], users)
            db = Database(url)
            with db.session() as s:  # a deadline rush: nobody is held back by the pending cap here
                s.execute(update(Challenge).values(max_queued=1000))
            stack = live.Stack(settings)
            try:
                stack.start_web()
                stack.start_worker(PODIUM_WORKER_MAX_TASKS=str(RECYCLE_AFTER))
                main = stack.procs["worker"].pid
                live.wait_until(lambda: len(descendants(main)) >= 2, 60, "worker did not start")
                _run_burst(stack, db, tokens, models, expected, main)
            finally:
                stop_leaving_nothing(stack)
                db.dispose()
    finally:
        redis.stop()


def _run_burst(stack, db, tokens, models, expected, worker_main):
    # Warm the worker with one submission, then note its processes and open files.
    warm = live.Api(stack.url, tokens["s00"]).submit("tiny", models[0]).json()["id"]
    live.Api(stack.url, tokens["s00"]).wait_finished(warm)
    procs_before = descendants(worker_main)
    pool_before = pool_children(worker_main)
    fds_before = {pid: _fds(pid) for pid in procs_before | {worker_main}}

    def client(i: int) -> list[tuple[int, int, int]]:
        api = live.Api(stack.url, tokens[f"s{i:02d}"])
        out = []
        for k in range(PER_CLIENT):
            seed = (i * 7 + k * 3) % SEEDS
            resp = api.submit("tiny", models[seed])
            out.append((resp.status_code, resp.json().get("id"), seed))
        return out

    t0 = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for chunk in pool.map(client, range(CLIENTS)) for r in chunk]
    t_upload = time.monotonic() - t0
    assert [code for code, _, _ in results] == [202] * (CLIENTS * PER_CLIENT)
    seed_of = {sub_id: seed for _, sub_id, seed in results}
    seed_of[warm] = 0
    assert len(seed_of) == CLIENTS * PER_CLIENT + 1

    def finished():
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(Submission)
                            .where(Submission.status.in_(["scored", "failed"]))) == len(seed_of)
    live.wait_until(finished, 300, "not every submission finished", 1.0)
    t_all = time.monotonic() - t0
    print(f"\nburst: {len(results)} uploads from {CLIENTS} clients in {t_upload:.1f} s; "
          f"all scored after {t_all:.1f} s ({len(results) / t_all:.1f}/s end to end)")

    with db.session() as s:
        rows = s.execute(select(Submission.id, Submission.status, Submission.attempt, User.username,
                                Submission.created_at, Score.public_score, Score.private_score)
                         .join(User, User.id == Submission.user_id)
                         .outerjoin(Score, Score.submission_id == Submission.id)).all()
        per_sub = dict(s.execute(select(Score.submission_id, func.count()).group_by(Score.submission_id)).all())
    assert len(rows) == len(seed_of)
    for sub_id, status, attempt, _user, _at, public, private in rows:
        assert (status, attempt, per_sub.get(sub_id)) == ("scored", 1, 1), sub_id
        assert (public, private) == pytest.approx(expected[seed_of[sub_id]], abs=1e-12), sub_id

    # The leaderboard equals a recomputation from the submissions table.
    best: dict[str, tuple] = {}
    for sub_id, _status, _attempt, user, created_at, public, _private in rows:
        key = (-public, created_at, sub_id)
        if user not in best or key < best[user][0]:
            best[user] = (key, public)
    entries = {}
    for row in rows:
        entries[row.username] = entries.get(row.username, 0) + 1
    recomputed = [(user, public, entries[user]) for user, (key, public) in sorted(best.items(), key=lambda kv: kv[1][0])]
    board = live.Api(stack.url).get("/challenges/tiny/leaderboard").json()
    assert [(r["user"], r["public_score"], r["entries"]) for r in board["rows"]] == recomputed
    assert [r["rank"] for r in board["rows"]] == list(range(1, CLIENTS + 1))

    # Nothing piled up in the worker: as many processes as before (the pool child is recycled every
    # RECYCLE_AFTER tasks, with its sandbox), no leaked descriptors, and no pool child killed for a slow start.
    after = descendants(worker_main)
    assert len(after) == len(procs_before), (procs_before, after)
    assert pool_children(worker_main) != pool_before, "the pool child was not recycled: the check above proved nothing"
    for pid, n in fds_before.items():
        if pid in after | {worker_main}:
            assert _fds(pid) <= n + 2, (pid, n, _fds(pid))
    log = stack.log("worker")
    assert "Timed out waiting for UP message" not in log and "exited with" not in log
