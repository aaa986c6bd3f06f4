"""Serve + worker only, no `podium beat`: every worker does the reaper's rounds, and a restarted worker hands back
at once what its previous incarnation (same node name) held. On the embedded default and on Postgres + Redis."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from podium.core import states
from podium.core.db import Database
from podium.core.models import Challenge, Score, Submission
from tests.support import live
from tests.support.bundles import write_tiny_bundle
from tests.support.models import slow_model
from tests.support.processes import assert_gone, descendants, stop_leaving_nothing

USERS = {"ann": "student", "prof": "instructor"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request, tmp_path):
    """Web only (tests start their workers) on the embedded default or on Postgres + Redis."""
    if request.param == "sqlite":
        yield _stack(tmp_path)
        return
    live.require_postgres_and_redis()
    with live.fresh_postgres_db() as url:
        yield _stack(tmp_path, url, live.SHARED_REDIS)


def _stack(tmp: Path, database_url=None, broker_url=None):
    settings = live.settings_for(tmp / "var", database_url, broker_url)
    stack = live.Stack(settings)
    stack.tokens = live.prepare_database(settings, [write_tiny_bundle(tmp / "tiny")], USERS)
    stack.db = Database(settings.database_url)
    stack.start_web()
    return stack


def row(stack, sub_id: int) -> tuple[Submission, int]:
    with stack.db.session() as s:
        return s.get(Submission, sub_id), s.scalar(select(func.count()).select_from(Score)
                                                   .where(Score.submission_id == sub_id))


def running_on(stack, sub_id: int) -> str:
    """The node name of the worker that claimed the row, once it runs."""
    def claimed():
        sub, _ = row(stack, sub_id)
        return sub.status == states.RUNNING and sub.worker and sub.worker.rsplit(":", 1)[0]
    return live.wait_until(claimed, 90, f"submission {sub_id} never started", 0.1)


def kill_worker(stack, name: str) -> None:
    """SIGKILL a worker's process group; its zygote and scoring child follow it."""
    tree = descendants(stack.procs[name].pid) | {stack.procs[name].pid}
    stack.kill(name, signal.SIGKILL)
    assert_gone(tree)


def test_restarted_worker_hands_back_its_own_rows_at_once(stack):
    """One worker, a long lease and no periodic round in reach: only the start-up hand-back can recover the row."""
    env = {"PODIUM_LEASE_S": 120, "PODIUM_REAPER_INTERVAL_S": 600}
    try:
        stack.start_worker("w1", hostname="w1@reaptest", **env)
        sub_id = live.Api(stack.url, stack.tokens["ann"]).submit("tiny", slow_model(4)).json()["id"]
        assert running_on(stack, sub_id) == "w1@reaptest"
        time.sleep(1.0)  # mid-scoring
        kill_worker(stack, "w1")
        killed_at = time.monotonic()
        stack.start_worker("w1", hostname="w1@reaptest", **env)
        live.wait_until(lambda: row(stack, sub_id)[0].attempt == 2, 60, "the restarted worker did not hand it back")
        assert time.monotonic() - killed_at < 60  # far inside the 120 s lease
        sub = live.Api(stack.url, stack.tokens["ann"]).wait_finished(sub_id, 90)
        assert sub["status"] == "scored", (sub, stack.log("w1"))
        found, n_scores = row(stack, sub_id)
        assert (n_scores, found.attempt, found.infra_retries) == (1, 2, 1)
        assert "died while grading it" in stack.log("w1")
        assert not stack.procs.get("beat")
    finally:
        stop_leaving_nothing(stack)
        stack.db.dispose()


def test_two_workers_reap_a_dead_one_and_score_once(stack):
    """Two live workers reap every 2 s; a third, killed mid-scoring, is never restarted. Its row is re-queued
    once (compare-and-set: the other reaper's attempt finds nothing) and scored exactly once, within lease + one
    round of the kill."""
    lease_s, round_s = 10, 2
    env = {"PODIUM_LEASE_S": lease_s, "PODIUM_REAPER_INTERVAL_S": round_s}
    try:
        with stack.db.session() as s:
            s.execute(update(Challenge).values(max_queued=100))
        stack.start_worker("victim", hostname="victim@reaptest", **env)
        sub_id = live.Api(stack.url, stack.tokens["ann"]).submit("tiny", slow_model(8)).json()["id"]
        assert running_on(stack, sub_id) == "victim@reaptest"
        stack.start_worker("w2", **env)
        stack.start_worker("w3", **env)
        live.wait_until(lambda: len(descendants(stack.procs["w3"].pid)) >= 2, 60, "w3 did not start")
        kill_worker(stack, "victim")
        killed_at = time.monotonic()
        live.wait_until(lambda: row(stack, sub_id)[0].attempt >= 2, lease_s + round_s + 10,
                        "no live worker reaped the dead one's row within lease + one round")
        requeued_after = time.monotonic() - killed_at
        sub = live.Api(stack.url, stack.tokens["ann"]).wait_finished(sub_id, 90)
        assert sub["status"] == "scored", (sub, stack.log("w2"), stack.log("w3"))
        found, n_scores = row(stack, sub_id)
        assert (n_scores, found.attempt, found.infra_retries) == (1, 2, 1), requeued_after
        logs = stack.log("w2") + stack.log("w3")
        assert logs.count(f"submission {sub_id}: worker lost (lease expired)") == 1
    finally:
        stop_leaving_nothing(stack)
        stack.db.dispose()
