"""The reaper on real databases and a real broker: stuck rows are re-enqueued a bounded number of times, then failed."""
from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from podium.core import states
from podium.core.celery_app import SCORE_TASK, create_celery
from podium.core.db import Base, Database
from podium.core.models import Challenge, Submission, User, utcnow
from podium.server.submissions import counts_against_limit
from podium.worker import reaper
from podium.worker.broker_probe import live_messages
from tests.support import live


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def rt(request, tmp_path):
    """What the reaper needs from a worker runtime: a database with one challenge, and a Celery app on a real broker."""
    if request.param == "sqlite":
        yield _runtime(tmp_path, f"sqlite:///{tmp_path / 'podium.sqlite'}")
        return
    if not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")
    with live.fresh_postgres_db() as url:
        runtime = _runtime(tmp_path, url)
        yield runtime
        runtime.db.dispose()


def _runtime(tmp_path, db_url, broker_url=None):
    settings = live.settings_for(tmp_path, db_url, broker_url)
    db = Database(settings.database_url)
    Base.metadata.create_all(db.engine)
    with db.session() as s:
        s.add(User(username="ann", role="student"))
        s.add(Challenge(slug="c", title="C", kind="image", labels=["a", "b"], input_shape=[1, 2, 2],
                        test_sha256="0" * 64, n_test=4))
    return SimpleNamespace(db=db, celery=create_celery(settings), settings=settings)


def add(rt, status=states.QUEUED, attempt=1, lease_in_s=None, created_ago_s=0.0, enqueued_ago_s=None,
        infra_retries=0) -> int:
    """Insert a row in a given state (test set-up written directly, not through the state machine)."""
    now = utcnow()
    with rt.db.session() as s:
        sub = Submission(challenge_id=s.scalar(select(Challenge.id)), user_id=s.scalar(select(User.id)),
                         status=status, attempt=attempt, infra_retries=infra_retries, model_sha256="f" * 64,
                         model_size=1, created_at=now - timedelta(seconds=created_ago_s),
                         enqueued_at=None if enqueued_ago_s is None else now - timedelta(seconds=enqueued_ago_s),
                         lease_expires_at=None if lease_in_s is None else now + timedelta(seconds=lease_in_s),
                         worker="w-dead" if status == states.RUNNING else None)
        s.add(sub)
        s.flush()
        return sub.id


def get(rt, sub_id) -> Submission:
    with rt.db.session() as s:
        return s.get(Submission, sub_id)


def messages(rt) -> set[tuple[int, int]]:
    return live_messages(rt.celery, {"podium"})


def test_dead_worker_row_is_requeued_as_a_new_attempt(rt):
    """Running with an expired lease: back to queued as attempt 2, with a message for attempt 2 in the broker."""
    dead = add(rt, states.RUNNING, lease_in_s=-1, created_ago_s=60, enqueued_ago_s=60)
    alive = add(rt, states.RUNNING, lease_in_s=20, created_ago_s=60, enqueued_ago_s=60)
    done = reaper.reap_stuck(rt)
    assert done == {"requeued": 1, "published": 0, "failed": 0}
    r = get(rt, dead)
    assert (r.status, r.attempt, r.infra_retries, r.worker) == (states.QUEUED, 2, 1, None)
    assert r.enqueued_at is not None
    assert messages(rt) == {(dead, 2)}
    assert get(rt, alive).status == states.RUNNING
    # A second pass finds nothing more to do: the new message is live.
    assert reaper.reap_stuck(rt) == {"requeued": 0, "published": 0, "failed": 0}


def test_dead_worker_retries_are_bounded_and_never_count_against_the_student(rt):
    sub_id = add(rt, states.RUNNING, attempt=4, infra_retries=reaper.MAX_REQUEUES, lease_in_s=-1, created_ago_s=300)
    assert reaper.reap_stuck(rt)["failed"] == 1
    r = get(rt, sub_id)
    assert (r.status, r.error, r.failure_kind) == (states.FAILED, states.INFRA_ERROR, states.FAILURE_INFRA)
    with rt.db.session() as s:
        assert sub_id not in set(s.scalars(select(Submission.id).where(counts_against_limit())))
    assert messages(rt) == set()


def test_never_published_row_is_published(rt):
    """The broker was down at upload: the row is published once it is older than the grace period."""
    old = add(rt, created_ago_s=reaper.UNPUBLISHED_GRACE_S + 5)
    fresh = add(rt, created_ago_s=0)  # the web may be publishing it right now
    assert reaper.reap_stuck(rt) == {"requeued": 0, "published": 1, "failed": 0}
    assert messages(rt) == {(old, 1)}
    r = get(rt, old)
    assert (r.status, r.attempt, r.infra_retries) == (states.QUEUED, 1, 0) and r.enqueued_at is not None
    assert get(rt, fresh).enqueued_at is None


def test_waiting_messages_are_left_alone_and_lost_ones_republished(rt):
    """A long queue is not a loss: only rows whose message the broker no longer holds are published again."""
    waiting = add(rt, created_ago_s=900, enqueued_ago_s=900)
    rt.celery.send_task(SCORE_TASK, args=[waiting, 1], queue="podium")
    lost = add(rt, created_ago_s=reaper.LOST_AFTER_S + 30, enqueued_ago_s=reaper.LOST_AFTER_S + 30)
    recent = add(rt, created_ago_s=5, enqueued_ago_s=5)  # maybe being fetched right now: not yet
    assert reaper.reap_stuck(rt) == {"requeued": 0, "published": 1, "failed": 0}
    assert messages(rt) == {(waiting, 1), (lost, 1)}
    assert get(rt, waiting).infra_retries == 0
    assert get(rt, lost).infra_retries == 1
    assert get(rt, recent).infra_retries == 0


def test_lost_messages_are_republished_a_bounded_number_of_times(rt):
    sub_id = add(rt, created_ago_s=3600, enqueued_ago_s=3600, infra_retries=reaper.MAX_REPUBLISH)
    assert reaper.reap_stuck(rt)["failed"] == 1
    r = get(rt, sub_id)
    assert (r.status, r.failure_kind) == (states.FAILED, states.FAILURE_INFRA)


def test_finished_rows_are_never_touched(rt):
    ids = [add(rt, status, lease_in_s=-100, created_ago_s=3600, enqueued_ago_s=3600) for status in states.FINISHED]
    assert reaper.reap_stuck(rt) == {"requeued": 0, "published": 0, "failed": 0}
    assert [get(rt, i).status for i in ids] == list(states.FINISHED)


def test_broker_down_then_back(tmp_path):
    """With Redis stopped the reaper still frees dead rows (kept queued, unpublished) and publishes them when it returns."""
    redis = live.RedisServer(tmp_path / "redis").start()
    try:
        rt = _runtime(tmp_path, f"sqlite:///{tmp_path / 'podium.sqlite'}", redis.url)
        sub_id = add(rt, states.RUNNING, lease_in_s=-1, created_ago_s=60, enqueued_ago_s=60)
        port = redis.port
        redis.stop()
        t0 = time.monotonic()
        assert reaper.reap_stuck(rt)["requeued"] == 1
        assert time.monotonic() - t0 < 30
        r = get(rt, sub_id)
        assert (r.status, r.attempt, r.enqueued_at) == (states.QUEUED, 2, None)
        redis.port = port
        redis.start()
        later = utcnow() + timedelta(seconds=reaper.UNPUBLISHED_GRACE_S + 1)
        assert reaper.reap_stuck(rt, now=later)["published"] == 1
        assert live_messages(rt.celery, {"podium"}) == {(sub_id, 2)}
        assert get(rt, sub_id).enqueued_at is not None
    finally:
        redis.stop()


def test_two_reapers_at_once_requeue_and_republish_each_row_once(rt, monkeypatch):
    """Both rounds read the same stuck rows (a barrier holds them until both have); compare-and-set lets one act."""
    import threading
    dead = add(rt, states.RUNNING, lease_in_s=-1, created_ago_s=60, enqueued_ago_s=60)
    lost = add(rt, created_ago_s=reaper.LOST_AFTER_S + 30, enqueued_ago_s=reaper.LOST_AFTER_S + 30)
    barrier, real = threading.Barrier(2), reaper._live_messages
    monkeypatch.setattr(reaper, "_live_messages", lambda r: (barrier.wait(10), real(r))[1])
    results = []
    threads = [threading.Thread(target=lambda: results.append(reaper.reap_stuck(rt))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r["requeued"] for r in results) == 1 and sum(r["published"] for r in results) == 1, results
    assert (get(rt, dead).attempt, get(rt, dead).infra_retries) == (2, 1)
    assert get(rt, lost).infra_retries == 1
    assert messages(rt) == {(dead, 2), (lost, 1)}


def test_a_round_between_a_requeue_and_its_publication_leaves_the_row_alone(rt):
    """Re-queued (committed) but not yet published by whoever re-queued it: another reaper does not send it too."""
    dead = add(rt, states.RUNNING, lease_in_s=-1, created_ago_s=60, enqueued_ago_s=60)
    with rt.db.session() as s:
        assert states.requeue(s, dead, attempt=1)
        s.commit()
    assert reaper.reap_stuck(rt) == {"requeued": 0, "published": 0, "failed": 0}
    assert messages(rt) == set()


def test_a_failed_publication_is_published_by_the_next_round(rt, monkeypatch):
    """The broker refuses the re-queuer's message: the row goes back to unpublished and the next round sends it."""
    dead = add(rt, states.RUNNING, lease_in_s=-1, created_ago_s=60, enqueued_ago_s=60)
    real = rt.celery.send_task
    monkeypatch.setattr(rt.celery, "send_task", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("broker away")))
    assert reaper.reap_stuck(rt)["requeued"] == 1
    assert get(rt, dead).enqueued_at is None and messages(rt) == set()
    monkeypatch.setattr(rt.celery, "send_task", real)
    assert reaper.reap_stuck(rt)["published"] == 1
    assert messages(rt) == {(dead, 2)}
