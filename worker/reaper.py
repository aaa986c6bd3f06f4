"""The reaper: nothing stays queued without a message, nothing stays running without a live worker."""
from __future__ import annotations

import logging
import os
from datetime import timedelta

from sqlalchemy import select

from server import states
from server.models import Challenge, Submission, utcnow
from server.queueing import enqueue, queue_for
from worker.celery_app import DEFAULT_QUEUE

log = logging.getLogger(__name__)

MAX_REQUEUES = 3          # a running row whose worker died is retried this often, then failed
UNPUBLISHED_GRACE_S = 5   # a queued row never published (broker was down) after this long
LOST_AFTER_S = 30         # a queued row whose message the broker no longer holds is published again after this long
REPUBLISH_AFTER_S = 600   # the same, blind, where the broker cannot be read
MAX_REPUBLISH = 6


def lost_after_seconds(env=os.environ) -> float:
    """How long a published, queued row may lack its broker message before it is published again."""
    return float(env.get("PODIUM_REAPER_LOST_AFTER_S", LOST_AFTER_S))


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
            if enqueued_at is not None:  # published before, and lost: bounded
                if retries >= MAX_REPUBLISH:
                    if states.fail(s, sub_id, states.INFRA_ERROR, kind=states.FAILURE_INFRA, attempt=attempt):
                        done["failed"] += 1
                    continue
                s.execute(Submission.__table__.update().where(Submission.id == sub_id)
                          .values(infra_retries=Submission.infra_retries + 1))
                s.commit()
            # Same attempt: if the old message still exists, whichever arrives second finds the row taken.
            if enqueue(rt.celery, s, sub_id, attempt, queue_for(challenge)):
                done["published"] += 1
    if any(done.values()):
        log.warning("reaper: %s", done)
    return done


def _live_messages(rt) -> set[tuple[int, int]] | None:
    from worker.broker_probe import live_messages
    with rt.db.session() as s:
        queues = {queue_for(c) for c in s.scalars(select(Challenge))}
    return live_messages(rt.celery, queues | {DEFAULT_QUEUE})
