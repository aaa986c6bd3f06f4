"""Submission rules: when a student may submit, what they may see, and how a row is shown."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from server import states
from server.errors import ApiError
from server.models import Challenge, Submission, User, utcnow


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return value.isoformat() if value else None


def check_window(challenge: Challenge, now: datetime | None = None) -> None:
    """Refuse uploads before opens_at (403) or after the deadline (403)."""
    now = now or utcnow()
    if challenge.opens_at and now < challenge.opens_at:
        raise ApiError(403, "not_open", f"challenge {challenge.slug} opens at {iso(challenge.opens_at)}",
                       opens_at=iso(challenge.opens_at))
    if challenge.deadline and now >= challenge.deadline:
        raise ApiError(403, "closed", f"challenge {challenge.slug} closed at {iso(challenge.deadline)}",
                       deadline=iso(challenge.deadline))


def counts_against_limit():
    """SQL condition: submissions that use up the daily allowance (platform failures do not)."""
    return or_(Submission.failure_kind.is_(None), Submission.failure_kind == states.FAILURE_MODEL)


def check_limits(session: Session, user: User, challenge: Challenge, now: datetime | None = None) -> None:
    """Daily limit (429 with the reset time) and the cap on a student's pending submissions (429)."""
    if user.is_instructor:
        return
    now = now or utcnow()
    day_start = datetime.combine(now.date(), time.min, tzinfo=timezone.utc)
    resets_at = day_start + timedelta(days=1)
    used = session.scalar(select(func.count()).select_from(Submission).where(
        Submission.user_id == user.id, Submission.challenge_id == challenge.id,
        Submission.created_at >= day_start, counts_against_limit()))
    if challenge.daily_limit and used >= challenge.daily_limit:
        raise ApiError(429, "daily_limit", f"daily limit of {challenge.daily_limit} submissions reached; "
                       f"it resets at {iso(resets_at)}", resets_at=iso(resets_at))
    pending = session.scalar(select(func.count()).select_from(Submission).where(
        Submission.user_id == user.id, Submission.challenge_id == challenge.id,
        Submission.status.in_([states.QUEUED, states.RUNNING])))
    if challenge.max_queued and pending >= challenge.max_queued:
        raise ApiError(429, "too_many_pending", f"you already have {pending} submissions waiting to be graded; "
                       "wait until one finishes")


def private_visible(challenge: Challenge, viewer: User | None) -> bool:
    """Private scores show to instructors always, to everyone after the reveal."""
    return bool(viewer and viewer.is_instructor) or challenge.revealed_at is not None


def can_view(submission: Submission, viewer: User | None) -> bool:
    """A submission is visible to its owner and to instructors."""
    return viewer is not None and (viewer.is_instructor or viewer.id == submission.user_id)


def submission_json(sub: Submission, viewer: User | None) -> dict:
    """The API view of a submission (GET /submissions/<id>)."""
    score = sub.score if sub.status == states.SCORED else None
    data = {
        "id": sub.id,
        "challenge": sub.challenge.slug,
        "user": sub.user.username,
        "status": sub.status,
        "public_score": score.public_score if score else None,
        "error": sub.error,
        "created_at": iso(sub.created_at),
        "started_at": iso(sub.started_at),
        "finished_at": iso(sub.finished_at),
        "model_sha256": sub.model_sha256,
        "is_final": sub.is_final,
    }
    if private_visible(sub.challenge, viewer):
        data["private_score"] = score.private_score if score else None
    if viewer is not None and viewer.is_instructor:
        data.update(attempt=sub.attempt, worker=sub.worker, failure_kind=sub.failure_kind,
                    disqualified_reason=sub.disqualified_reason,
                    timings=score.timings if score else None, device=score.device if score else None)
    return data


def new_submission(session: Session, user: User, challenge: Challenge, sha: str, size: int, filename: str) -> Submission:
    """Insert a queued submission row (the caller commits, then enqueues)."""
    sub = Submission(challenge_id=challenge.id, user_id=user.id, status=states.QUEUED, model_sha256=sha,
                     model_size=size, filename=filename)
    session.add(sub)
    session.flush()
    return sub
