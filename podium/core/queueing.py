"""Enqueue scoring work, always after the row it names is committed: the right queue and a fair-share priority."""
from __future__ import annotations

import logging

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from podium.core import states
from podium.core.celery_app import CPU_QUEUE, DEFAULT_QUEUE, GPU_QUEUE, PRIORITY_STEPS, SCORE_TASK
from podium.core.models import Challenge, Submission, utcnow

log = logging.getLogger(__name__)

DEVICES = {"any": None, "gpu": GPU_QUEUE, "cpu": CPU_QUEUE}
# (waiting submissions of the same course ahead of this one, broker priority step): a course with a burst
# queued is served after courses with little waiting, so one class cannot starve another.
FAIR_SHARE = ((10, PRIORITY_STEPS[3]), (4, PRIORITY_STEPS[2]), (1, PRIORITY_STEPS[1]), (0, PRIORITY_STEPS[0]))
PENDING = (states.QUEUED, states.RUNNING)


def queue_for_device(device: str | None) -> str | None:
    """The Challenge.queue value for challenge.toml's `device` ("gpu", "cpu" or "any"; None = any)."""
    if device is None:
        return None
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)} (got {device!r})")
    return DEVICES[device]


def queue_for(challenge) -> str:
    """The broker queue a challenge's submissions go to."""
    return challenge.queue or DEFAULT_QUEUE


def fair_share_priority(waiting_ahead: int) -> int:
    """The broker priority step for a submission with this many others of its course still waiting."""
    for threshold, step in FAIR_SHARE:
        if waiting_ahead >= threshold:
            return step
    return PRIORITY_STEPS[0]


def waiting_ahead(session: Session, submission_id: int) -> int:
    """Queued or running submissions of the same course (or challenge, outside courses) other than this one."""
    row = session.execute(select(Submission.challenge_id, Challenge.course_id)
                          .join(Challenge, Challenge.id == Submission.challenge_id)
                          .where(Submission.id == submission_id)).first()
    if row is None:
        return 0
    challenge_id, course_id = row
    query = select(func.count()).select_from(Submission).where(Submission.status.in_(PENDING),
                                                              Submission.id != submission_id)
    if course_id is not None:
        query = query.join(Challenge, Challenge.id == Submission.challenge_id).where(Challenge.course_id == course_id)
    else:
        query = query.where(Submission.challenge_id == challenge_id)
    return int(session.scalar(query) or 0)


def enqueue(celery_app, session: Session, submission_id: int, attempt: int, queue: str = DEFAULT_QUEUE) -> bool:
    """Publish the scoring task for a committed submission; on broker failure keep it queued for the reaper."""
    try:
        priority = fair_share_priority(waiting_ahead(session, submission_id))
    except Exception as exc:  # fairness is a nicety; publishing is not
        log.warning("could not compute the fair-share priority of submission %s: %s", submission_id, exc)
        session.rollback()
        priority = PRIORITY_STEPS[0]
    try:
        celery_app.send_task(SCORE_TASK, args=[submission_id, attempt], queue=queue, priority=priority, retry=True,
                             retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
    except Exception as exc:  # the row stays queued with no enqueued_at; the reaper publishes it soon
        log.warning("could not enqueue submission %s (attempt %s): %s", submission_id, attempt, exc)
        _mark_published(session, submission_id, attempt, None)
        return False
    _mark_published(session, submission_id, attempt, utcnow())
    return True


def _mark_published(session: Session, submission_id: int, attempt: int, when) -> None:
    try:
        session.execute(update(Submission).where(Submission.id == submission_id, Submission.attempt == attempt,
                                                 Submission.status == states.QUEUED)
                        .values(enqueued_at=when).execution_options(synchronize_session=False))
        session.commit()
    except Exception as exc:  # the database away too: the reaper's blind rule still publishes it later
        log.warning("could not record the publication of submission %s: %s", submission_id, exc)
        session.rollback()
