"""Grade passback rows: what score to send for each student's placement, and publishing the send task.

Scores are queued when a student's best public score changes (the worker, after it commits a score) and at
the reveal (the web app, the final score). One row per launch link keeps only the latest score to send.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.core import states
from podium.core.celery_app import LTI_QUEUE, PASSBACK_TASK
from podium.core.lti.models import PENDING, SENT, LtiLaunchLink, LtiPassback, LtiResourceLink
from podium.core.models import Challenge, Score, Submission, TeamMember, User, utcnow

log = logging.getLogger(__name__)

STUDENT = "student"


def best_public_score(session: Session, user_id: int, challenge_id: int) -> float | None:
    """The student's best public score on the leaderboard's terms (scored, not disqualified), or None.

    A member of a team is graded on the team's best: every member gets the team's result.
    """
    team_id = session.scalar(select(TeamMember.team_id).where(TeamMember.challenge_id == challenge_id,
                                                              TeamMember.user_id == user_id))
    owner = Submission.team_id == team_id if team_id is not None else Submission.user_id == user_id
    return session.scalar(
        select(func.max(Score.public_score)).join(Submission, Submission.id == Score.submission_id)
        .join(User, User.id == Submission.user_id)
        .where(Submission.challenge_id == challenge_id, owner,
               Submission.status == states.SCORED, Submission.disqualified_reason.is_(None),
               User.disqualified_reason.is_(None)))


def graded_users(session: Session, submission: Submission) -> list[int]:
    """Whose grade a submission can move: every current member of its team, or its uploader alone."""
    if submission.team_id is None:
        return [submission.user_id]
    return list(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == submission.team_id)
                                .order_by(TeamMember.user_id)))


def queue_score(session: Session, user_id: int, challenge_id: int, score: float, *, final: bool = False,
                at: datetime | None = None) -> list[int]:
    """Record the score to send for each of the user's student placements of this challenge; returns row ids.

    A public score equal to the one already queued or sent is not queued again, and once the final score is
    queued a late public update never replaces it. The caller commits, then calls enqueue() with the ids.
    """
    at = at or utcnow()
    links = session.scalars(select(LtiLaunchLink).join(LtiResourceLink).where(
        LtiLaunchLink.user_id == user_id, LtiResourceLink.challenge_id == challenge_id,
        LtiLaunchLink.role == STUDENT))
    ids = []
    for link in links:
        if not link.resource_link.ags_scopes:
            continue  # the launch carried no Assignment and Grade Services claim
        row = session.scalar(select(LtiPassback).where(LtiPassback.launch_link_id == link.id))
        if row is None:
            row = LtiPassback(launch_link_id=link.id, score=score, score_at=at, final=final)
            session.add(row)
        elif not final and (row.final or (row.score == score and row.status in (PENDING, SENT))):
            continue
        row.score, row.final, row.score_at, row.status = score, final, at, PENDING
        session.flush()
        ids.append(row.id)
    return ids


def queue_best_public(session: Session, user_id: int, challenge_id: int) -> list[int]:
    """Queue the student's current best public score (before the reveal only); returns row ids."""
    challenge = session.get(Challenge, challenge_id)
    if challenge is None or challenge.revealed_at is not None:
        return []
    best = best_public_score(session, user_id, challenge_id)
    return [] if best is None else queue_score(session, user_id, challenge_id, best)


def enqueue(celery_app, passback_ids: list[int]) -> int:
    """Publish one passback task per committed row; a broker failure leaves the row pending for "send again"."""
    sent = 0
    for pid in passback_ids:
        try:
            celery_app.send_task(PASSBACK_TASK, args=[pid], queue=LTI_QUEUE, retry=True,
                                 retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
            sent += 1
        except Exception as exc:  # passback must never break the caller (grading, the reveal)
            log.warning("could not enqueue LTI passback %s: %s", pid, exc)
    return sent
