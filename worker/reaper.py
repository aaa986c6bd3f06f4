"""The reaper: nothing stays queued without a message, nothing stays running without a live worker."""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta

from sqlalchemy import select, update

from podium.core import states
from podium.core.celery_app import DEFAULT_QUEUE
from podium.core.models import Challenge, Submission, utcnow
from podium.core.queueing import enqueue, queue_for
from podium.worker.passback import resend_lost

log = logging.getLogger(__name__)

MAX_REQUEUES = 3          # a running row whose worker died is retried this often, then failed
UNPUBLISHED_GRACE_S = 5   # a queued row never published (broker was down) after this long
LOST_AFTER_S = 30         # a queued row whose message the broker no longer holds is published again after this long
REPUBLISH_AFTER_S = 600   # the same, blind, where the broker cannot be read
MAX_REPUBLISH = 6
INTERVAL_S = 15           # how often every worker does a round (PODIUM_REAPER_INTERVAL_S)


def lost_after_seconds(env=os.environ) -> float:
    """How long a published, queued row may lack its broker message before it is published again."""
    return float(env.get("PODIUM_REAPER_LOST_AFTER_S", LOST_AFTER_S))


def interval_seconds(env=os.environ) -> float:
    """Seconds between two reaper rounds of one worker."""
    return float(env.get("PODIUM_REAPER_INTERVAL_S", INTERVAL_S))


def reap_stuck(rt, now=None) -> dict:
    """Re-enqueue or fail stuck rows; returns counts of what it did."""
    now = now or utcnow()
    done = {"requeued": 0, "published": 0, "failed": 0}
    live = _live_messages(rt)  # read before the rows, so a message fetched meanwhile is not taken for lost
    with rt.db.session() as s:
        dead = s.execute(select(Submission.id, Submission.attempt, Submission.infra_retries, Challenge)
                         .join(Challenge, Challenge.id == Submission.challenge_id)
                         .where(Submission.status == states.RUNNING, Submission.lease_expires_at < now)).all()
        unpublished = s.execute(select(Submission.id, Submission.attempt, Submission.infra_retries, Challenge,
                                       Submission.enqueued_at)
                                .join(Challenge, Challenge.id == Submission.challenge_id)
                                .where(Submission.status == states.QUEUED,
                                       ((Submission.enqueued_at.is_(None)
                                         & (Submission.created_at < now - timedelta(seconds=UNPUBLISHED_GRACE_S)))
                                        | (Submission.enqueued_at < now - timedelta(seconds=lost_after_seconds()))))).all()
    for sub_id, attempt, retries, challenge in dead:
        with rt.db.session() as s:
            if retries >= MAX_REQUEUES:
                if states.fail(s, sub_id, states.INFRA_ERROR, kind=states.FAILURE_INFRA, attempt=attempt):
                    done["failed"] += 1
                continue
            if not states.requeue(s, sub_id, attempt=attempt):
                continue
            s.commit()
            log.warning("submission %s: worker lost (lease expired); re-enqueued as attempt %s", sub_id, attempt + 1)
            enqueue(rt.celery, s, sub_id, attempt + 1, queue_for(challenge))
            done["requeued"] += 1
    for sub_id, attempt, retries, challenge, enqueued_at in unpublished:
        if enqueued_at is not None:
            if live is not None and (sub_id, attempt) in live:
                continue  # still waiting in the broker: a long queue, not a lost message
            if live is None and enqueued_at >= now - timedelta(seconds=REPUBLISH_AFTER_S):
                continue
        with rt.db.session() as s:
            if enqueued_at is not None and retries >= MAX_REPUBLISH:  # published before, and lost: bounded
                if states.fail(s, sub_id, states.INFRA_ERROR, kind=states.FAILURE_INFRA, attempt=attempt):
                    done["failed"] += 1
                continue
            if not _claim_publication(s, sub_id, attempt, retries, enqueued_at, now):
                continue
            # Same attempt: if the old message still exists, whichever arrives second finds the row taken.
            if enqueue(rt.celery, s, sub_id, attempt, queue_for(challenge)):
                done["published"] += 1
    if any(done.values()):
        log.warning("reaper: %s", done)
    return done


def _claim_publication(s, sub_id: int, attempt: int, retries: int, enqueued_at, now) -> bool:
    """Compare-and-set on what this round read, stamping enqueued_at: of several workers reaping at once, one
    publishes, and a row just claimed no longer looks unpublished to the next round that reads it."""
    query = update(Submission).where(Submission.id == sub_id, Submission.attempt == attempt,
                                     Submission.status == states.QUEUED, Submission.infra_retries == retries)
    values: dict = {"enqueued_at": now}
    if enqueued_at is None:
        query = query.where(Submission.enqueued_at.is_(None))
    else:  # published before and lost: counted, so it is bounded
        query = query.where(Submission.enqueued_at == enqueued_at)
        values["infra_retries"] = Submission.infra_retries + 1
    won = s.execute(query.values(**values).execution_options(synchronize_session=False)).rowcount == 1
    s.commit()
    return won


def _live_messages(rt) -> set[tuple[int, int]] | None:
    from podium.worker.broker_probe import live_messages
    with rt.db.session() as s:
        queues = {queue_for(c) for c in s.scalars(select(Challenge))}
    return live_messages(rt.celery, queues | {DEFAULT_QUEUE})


def requeue_own(rt, node: str, started_before: datetime) -> int:
    """Hand back at once the running rows this worker's previous incarnation (same node name) held.

    Rows claimed since `started_before` (this incarnation's own) are left alone; each hand-back is the
    same compare-and-set as the reaper's, so a reaper elsewhere racing on the row is harmless.
    """
    done = 0
    with rt.db.session() as s:
        mine = s.execute(select(Submission.id, Submission.attempt, Submission.infra_retries, Challenge)
                         .join(Challenge, Challenge.id == Submission.challenge_id)
                         .where(Submission.status == states.RUNNING, Submission.worker.like(f"{node}:%"),
                                Submission.started_at < started_before)).all()
    for sub_id, attempt, retries, challenge in mine:
        with rt.db.session() as s:
            if retries >= MAX_REQUEUES:
                states.fail(s, sub_id, states.INFRA_ERROR, kind=states.FAILURE_INFRA, attempt=attempt)
                continue
            if not states.requeue(s, sub_id, attempt=attempt):
                continue
            s.commit()
            log.warning("submission %s: this worker (%s) died while grading it; re-enqueued as attempt %s",
                        sub_id, node, attempt + 1)
            enqueue(rt.celery, s, sub_id, attempt + 1, queue_for(challenge))
            done += 1
    return done


class ReaperThread(threading.Thread):
    """The reaper's rounds inside a worker's main process: first its own previous incarnation's rows, then
    every `interval_s` the stuck rows of any worker. Several workers doing this at once are harmless."""

    def __init__(self, rt, node: str, interval_s: float | None = None):
        super().__init__(name="podium-reaper", daemon=True)
        self.rt, self.node = rt, node
        self.interval_s = interval_seconds() if interval_s is None else interval_s
        self.started_at = utcnow()
        self.stopping = threading.Event()

    def run(self) -> None:
        self._round(lambda: requeue_own(self.rt, self.node, self.started_at) if self.node else 0)
        while not self.stopping.wait(self.interval_s):
            self._round(lambda: reap_stuck(self.rt))
            self._round(lambda: resend_lost(self.rt.db, self.rt.celery))

    def _round(self, work) -> None:
        try:
            work()
        except Exception as exc:  # database or broker away: the next round tries again
            log.warning("reaper round failed: %s: %s", exc.__class__.__name__, exc)
        finally:
            self.rt.db.dispose()  # no connection kept between rounds (and none inherited by forked children)

    def stop(self) -> None:
        """End the rounds (worker shutdown)."""
        self.stopping.set()
