"""Instructor actions on a challenge: the dashboard, re-scoring with a report, disqualifying, revealing, deadlines."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server import states
from server.models import Challenge, Rescore, Submission, User, utcnow
from server.queueing import enqueue, queue_for


DASHBOARD_ROWS = 500


@dataclass
class DashboardRow:
    """One submission as the instructor's dashboard shows it."""

    sub: Submission
    shared_with: list[str]  # other students who uploaded the identical model file


def dashboard(session: Session, challenge: Challenge, username: str | None = None,
              limit: int = DASHBOARD_ROWS) -> list[DashboardRow]:
    """A challenge's submissions, newest first (one student's only, when named), flagging identical models
    uploaded by different students anywhere in the challenge."""
    query = (select(Submission).options(selectinload(Submission.score), selectinload(Submission.user))
             .where(Submission.challenge_id == challenge.id).order_by(Submission.id.desc()).limit(limit))
    if username:
        query = query.join(User, User.id == Submission.user_id).where(User.username == username)
    subs = list(session.scalars(query))
    owners: dict[str, set[str]] = {}
    if subs:
        pairs = session.execute(
            select(Submission.model_sha256, User.username).join(User, User.id == Submission.user_id)
            .where(Submission.challenge_id == challenge.id,
                   Submission.model_sha256.in_({s.model_sha256 for s in subs})).distinct())
        for sha, name in pairs:
            owners.setdefault(sha, set()).add(name)
    return [DashboardRow(s, sorted(owners.get(s.model_sha256, set()) - {s.user.username})) for s in subs]


def _snapshot(sub: Submission) -> dict:
    score = sub.score if sub.status == states.SCORED else None
    return {"id": sub.id, "status": sub.status, "public_score": score.public_score if score else None,
            "private_score": score.private_score if score else None}


def rescore(session: Session, celery_app, challenge: Challenge, requester: User | None,
            submission_ids: list[int] | None = None) -> Rescore:
    """Re-open finished submissions (one, some, or all of the challenge), remember their scores, then enqueue them."""
    query = select(Submission).options(selectinload(Submission.score)).where(
        Submission.challenge_id == challenge.id, Submission.status.in_(states.FINISHED))
    if submission_ids is not None:
        query = query.where(Submission.id.in_(submission_ids))
    subs = list(session.scalars(query.order_by(Submission.id)))
    before, reopened = [], []
    for sub in subs:
        snap = _snapshot(sub)
        if states.reopen(session, sub.id):
            before.append(snap)
            reopened.append(sub.id)
    run = Rescore(challenge_id=challenge.id, requested_by=requester.id if requester else None, before=before)
    session.add(run)
    session.commit()
    attempts = dict(session.execute(select(Submission.id, Submission.attempt).where(Submission.id.in_(reopened))).all())
    for sub_id in reopened:
        enqueue(celery_app, session, sub_id, attempts[sub_id], queue_for(challenge))
    return run


@dataclass
class Change:
    """One re-scored submission: before and now."""

    id: int
    user: str
    old_status: str
    old_public: float | None
    old_private: float | None
    status: str
    public: float | None
    private: float | None

    @property
    def pending(self) -> bool:
        return self.status in (states.QUEUED, states.RUNNING)

    @property
    def changed(self) -> bool:
        return (self.old_status, self.old_public, self.old_private) != (self.status, self.public, self.private)


def rescore_report(session: Session, run: Rescore) -> list[Change]:
    """What a re-score changed, submission by submission (pending rows show as such)."""
    ids = [b["id"] for b in run.before]
    subs = {s.id: s for s in session.scalars(select(Submission).options(
        selectinload(Submission.score), selectinload(Submission.user)).where(Submission.id.in_(ids)))}
    changes = []
    for b in run.before:
        sub = subs.get(b["id"])
        if sub is None:
            continue
        now = _snapshot(sub)
        changes.append(Change(sub.id, sub.user.username, b["status"], b["public_score"], b["private_score"],
                              now["status"], now["public_score"], now["private_score"]))
    return changes


def disqualify_submission(session: Session, sub: Submission, reason: str | None) -> None:
    """Exclude one submission from the leaderboard with a reason (None or empty: reinstate it)."""
    sub.disqualified_reason = (reason or "").strip() or None
    session.flush()


def disqualify_user(session: Session, user: User, reason: str | None) -> None:
    """Exclude a student from every leaderboard with a reason (None or empty: reinstate them)."""
    if user.is_instructor:
        raise ValueError("instructors cannot be disqualified")
    user.disqualified_reason = (reason or "").strip() or None
    session.flush()


def reveal(session: Session, challenge: Challenge, revealed: bool = True) -> None:
    """Show (or hide again) the private leaderboard to everyone."""
    challenge.revealed_at = (challenge.revealed_at or utcnow()) if revealed else None
    session.flush()


def set_window(session: Session, challenge: Challenge, opens_at: datetime | None, deadline: datetime | None) -> None:
    """Set when a challenge opens and closes (aware datetimes; None leaves that side open)."""
    for value in (opens_at, deadline):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a time zone")
    if opens_at and deadline and deadline <= opens_at:
        raise ValueError("the deadline must come after the opening time")
    challenge.opens_at, challenge.deadline = opens_at, deadline
    session.flush()


def cancel(session: Session, sub: Submission, by: User) -> bool:
    """Stop a queued or running submission (its owner or an instructor); it ends failed and is not counted."""
    who = "the instructor" if by.is_instructor and by.id != sub.user_id else "you"
    return states.fail(session, sub.id, f"cancelled by {who}", kind=states.FAILURE_CANCELLED)
