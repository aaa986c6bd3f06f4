"""The submission state machine on real databases (SQLite and Postgres): the table, claims, leases, requeue, reopen."""
from __future__ import annotations

import threading
from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy import func, select, update

from podium.core import states
from podium.core.db import Base, Database
from podium.core.models import Challenge, Submission, User, utcnow
from podium.server.submissions import counts_against_limit
from tests.support import live


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path_factory):
    """An empty schema with one student and one challenge, on SQLite or on a fresh Postgres database."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('states') / 'db.sqlite'}")
        yield _seeded(database)
        database.dispose()
        return
    if not live.postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {live.PG_ADMIN_URL}")
    with live.fresh_postgres_db() as url:
        database = Database(url)
        yield _seeded(database)
        database.dispose()


def _seeded(database: Database) -> Database:
    Base.metadata.create_all(database.engine)
    with database.session() as s:
        s.add(User(username="ann", role="student"))
        s.add(Challenge(slug="c", title="C", kind="image", labels=["a", "b"], input_shape=[1, 2, 2],
                        test_sha256="0" * 64, n_test=4))
    return database


def new_row(db: Database, status: str = states.QUEUED, attempt: int = 1, lease_in_s: float | None = None,
            **fields) -> int:
    """Insert a submission already in `status` (set directly: this is test set-up, not a transition)."""
    with db.session() as s:
        user_id = s.scalar(select(User.id))
        challenge_id = s.scalar(select(Challenge.id))
        lease = utcnow() + timedelta(seconds=lease_in_s) if lease_in_s is not None else None
        sub = Submission(challenge_id=challenge_id, user_id=user_id, status=status, attempt=attempt,
                         model_sha256="f" * 64, model_size=1, lease_expires_at=lease, **fields)
        s.add(sub)
        s.flush()
        return sub.id


def row(db: Database, sub_id: int) -> Submission:
    with db.session() as s:
        return s.get(Submission, sub_id)


@pytest.mark.parametrize("current,new", list(product(states.STATUSES, states.STATUSES)))
def test_transition_follows_the_table(db, current, new):
    """Every pair of statuses: the move happens exactly when the table allows it."""
    sub_id = new_row(db, current)
    with db.session() as s:
        moved = states.transition(s, sub_id, new)
    assert moved == states.allowed(current, new)
    assert row(db, sub_id).status == (new if moved else current)


def test_table_shape():
    """Finished rows only ever go back to queued (re-score); nothing reaches an unknown status."""
    assert states.sources_of(states.SCORED) == [states.RUNNING]
    assert set(states.sources_of(states.FAILED)) == {states.QUEUED, states.RUNNING}
    for finished in states.FINISHED:
        assert states.ALLOWED[finished] == {states.QUEUED}
    assert set(states.ALLOWED) == set(states.STATUSES)


def test_bad_requests_raise(db):
    sub_id = new_row(db)
    with db.session() as s:
        with pytest.raises(ValueError):
            states.transition(s, sub_id, "stuck")
        with pytest.raises(ValueError):
            states.transition(s, sub_id, states.SCORED, from_statuses=[states.QUEUED])


def test_claim_lease_and_takeover(db):
    """A live lease keeps others out; an expired one lets another worker take the row over."""
    sub_id = new_row(db)
    with db.session() as s:
        assert not states.claim(s, sub_id, 2, "w1", 30)  # wrong attempt
        assert states.claim(s, sub_id, 1, "w1", 30)
    r = row(db, sub_id)
    assert (r.status, r.worker) == (states.RUNNING, "w1")
    assert r.started_at is not None and r.lease_expires_at > utcnow() + timedelta(seconds=25)
    with db.session() as s:
        assert not states.claim(s, sub_id, 1, "w2", 30)  # lease still live
        s.execute(update(Submission).where(Submission.id == sub_id)
                  .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    with db.session() as s:
        assert states.claim(s, sub_id, 1, "w2", 30)
    assert row(db, sub_id).worker == "w2"


def test_claim_refuses_finished_rows(db):
    for status in states.FINISHED:
        sub_id = new_row(db, status)
        with db.session() as s:
            assert not states.claim(s, sub_id, 1, "w", 30)
        assert row(db, sub_id).status == status


def test_concurrent_claims_have_one_winner(db):
    """Eight workers race for the same row in separate sessions and threads: exactly one wins."""
    sub_id = new_row(db)
    barrier = threading.Barrier(8)
    wins: list[str] = []
    errors: list[Exception] = []

    def race(name):
        try:
            barrier.wait()
            with db.session() as s:
                if states.claim(s, sub_id, 1, name, 30):
                    wins.append(name)
        except Exception as exc:  # an error would mean a race the table did not settle
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(wins) == 1
    assert row(db, sub_id).worker == wins[0]


def test_renew_lease_only_for_the_running_attempt(db):
    sub_id = new_row(db, states.RUNNING, attempt=2, lease_in_s=1)
    with db.session() as s:
        assert not states.renew_lease(s, sub_id, 1, 60)
        assert states.renew_lease(s, sub_id, 2, 60)
    assert row(db, sub_id).lease_expires_at > utcnow() + timedelta(seconds=50)
    done = new_row(db, states.SCORED)
    with db.session() as s:
        assert not states.renew_lease(s, done, 1, 60)


def test_finish_scored_needs_running_and_same_attempt(db):
    sub_id = new_row(db, states.RUNNING, attempt=3, lease_in_s=30)
    with db.session() as s:
        assert not states.finish_scored(s, sub_id, 2)
        assert states.finish_scored(s, sub_id, 3)
        assert not states.finish_scored(s, sub_id, 3)  # a second delivery cannot finish it again
    r = row(db, sub_id)
    assert r.status == states.SCORED and r.finished_at is not None and r.lease_expires_at is None


def test_fail_records_reason_and_kind(db):
    sub_id = new_row(db, states.RUNNING, lease_in_s=30)
    with db.session() as s:
        assert states.fail(s, sub_id, states.INFRA_ERROR, kind=states.FAILURE_INFRA, attempt=1)
        assert not states.fail(s, sub_id, "again")
    r = row(db, sub_id)
    assert (r.status, r.error, r.failure_kind) == (states.FAILED, states.INFRA_ERROR, states.FAILURE_INFRA)
    scored = new_row(db, states.SCORED)
    with db.session() as s:
        assert not states.fail(s, scored, "late message")
    assert row(db, scored).status == states.SCORED


def test_requeue_starts_a_new_attempt(db):
    sub_id = new_row(db, states.RUNNING, lease_in_s=30, worker="w1")
    with db.session() as s:
        assert not states.requeue(s, sub_id, attempt=2)
        assert states.requeue(s, sub_id, attempt=1)
    r = row(db, sub_id)
    assert (r.status, r.attempt, r.infra_retries, r.worker, r.lease_expires_at) == (states.QUEUED, 2, 1, None, None)
    with db.session() as s:
        assert not states.requeue(s, sub_id, attempt=2)  # a queued row is re-published, never re-attempted
        assert not states.claim(s, sub_id, 1, "w-old", 30)  # the old attempt's late message cannot claim it
        assert states.claim(s, sub_id, 2, "w2", 30)
        assert states.requeue(s, sub_id, attempt=2, count_retry=False)  # shutdown hand-back: not a retry
    r = row(db, sub_id)
    assert (r.attempt, r.infra_retries) == (3, 1)
    done = new_row(db, states.SCORED)
    with db.session() as s:
        assert not states.requeue(s, done)


def test_reopen_is_a_fresh_attempt_and_old_messages_are_harmless(db):
    sub_id = new_row(db, states.FAILED, attempt=2, infra_retries=3, error="x", failure_kind=states.FAILURE_MODEL)
    with db.session() as s:
        assert states.reopen(s, sub_id)
    r = row(db, sub_id)
    assert (r.status, r.attempt, r.infra_retries, r.error, r.failure_kind) == (states.QUEUED, 3, 0, None, None)
    with db.session() as s:
        assert not states.claim(s, sub_id, 2, "w-old", 30)
        assert not states.fail(s, sub_id, "late", attempt=2)
        assert not states.reopen(s, sub_id)  # only finished rows reopen
    running = new_row(db, states.RUNNING, lease_in_s=30)
    with db.session() as s:
        assert not states.reopen(s, running)


def test_platform_failures_do_not_count_against_the_limit(db):
    """Scored and model-failed rows use up the daily allowance; infrastructure failures, cancellations and models
    over a cost budget (never scored) do not."""
    with db.session() as s:
        s.execute(Submission.__table__.delete())
    kinds = {"scored": (states.SCORED, None), "model": (states.FAILED, states.FAILURE_MODEL),
             "infra": (states.FAILED, states.FAILURE_INFRA), "cancelled": (states.FAILED, states.FAILURE_CANCELLED),
             "budget": (states.FAILED, states.FAILURE_BUDGET), "queued": (states.QUEUED, None)}
    ids = {name: new_row(db, status, failure_kind=kind) for name, (status, kind) in kinds.items()}
    with db.session() as s:
        counted = set(s.scalars(select(Submission.id).where(counts_against_limit())))
        assert s.scalar(select(func.count()).select_from(Submission)) == 6
    assert counted == {ids["scored"], ids["model"], ids["queued"]}
