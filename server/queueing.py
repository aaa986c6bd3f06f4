"""Enqueue scoring work, always after the row it names is committed."""
from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.models import Submission, utcnow
from worker.celery_app import DEFAULT_QUEUE, SCORE_TASK

log = logging.getLogger(__name__)


def queue_for(challenge) -> str:
    """The broker queue a challenge's submissions go to."""
    return challenge.queue or DEFAULT_QUEUE


def enqueue(celery_app, session: Session, submission_id: int, attempt: int, queue: str = DEFAULT_QUEUE) -> bool:
    """Publish the scoring task for a committed submission; on broker failure keep it queued for the reaper."""
    try:
        celery_app.send_task(SCORE_TASK, args=[submission_id, attempt], queue=queue, retry=True,
                             retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
    except Exception as exc:  # the row stays queued with no enqueued_at; the reaper publishes it later
        log.warning("could not enqueue submission %s (attempt %s): %s", submission_id, attempt, exc)
        return False
    session.execute(update(Submission).where(Submission.id == submission_id, Submission.attempt == attempt)
                    .values(enqueued_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()
    return True
