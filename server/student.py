"""What a student does with their own submissions: list them, read per-class results, pick finals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server import states
from server.leaderboard import FINAL_PICKS
from server.models import Challenge, Submission, User, utcnow
from server.submissions import counts_against_limit


class PickError(ValueError):
    """A final pick that is not allowed; the message says why."""


def my_submissions(session: Session, user: User, challenge: Challenge) -> list[Submission]:
    """The user's submissions to a challenge, newest first, with their scores loaded."""
    return list(session.scalars(
        select(Submission).options(selectinload(Submission.score))
        .where(Submission.challenge_id == challenge.id, Submission.user_id == user.id)
        .order_by(Submission.id.desc())))


def set_final(session: Session, user: User, sub: Submission, final: bool) -> None:
    """Mark (or unmark) one of the user's scored submissions as a final pick; at most FINAL_PICKS per challenge."""
    if sub.user_id != user.id:
        raise PickError("only your own submissions can be picked")
    if final and sub.status != states.SCORED:
        raise PickError("only scored submissions can be picked as final")
    if final and not sub.is_final:
        picked = session.scalar(select(func.count()).select_from(Submission).where(
            Submission.user_id == user.id, Submission.challenge_id == sub.challenge_id,
            Submission.is_final.is_(True)))
        if picked >= FINAL_PICKS:
            raise PickError(f"you already picked {FINAL_PICKS} final submissions; unpick one first")
    sub.is_final = final
    session.flush()


@dataclass
class ClassResult:
    """Public-rows accuracy of one class."""

    label: str
    accuracy: float | None
    support: int


def per_class(challenge: Challenge, sub: Submission) -> tuple[list[ClassResult], list[list[int]]] | None:
    """Per-class accuracy and the confusion matrix (rows: true class) on the public rows, or None when unscored."""
    score = sub.score if sub.status == states.SCORED else None
    if score is None or score.public_confusion is None:
        return None
    confusion = [[int(v) for v in row] for row in score.public_confusion]
    results = []
    for i, label in enumerate(challenge.labels):
        support = sum(confusion[i]) if i < len(confusion) else 0
        correct = confusion[i][i] if support else 0
        results.append(ClassResult(str(label), correct / support if support else None, support))
    return results, confusion


@dataclass
class Quota:
    """Where a student stands against a challenge's window and limits, for the page to show."""

    phase: str  # "upcoming", "open" or "closed"
    used_today: int
    daily_limit: int
    resets_at: datetime
    pending: int
    max_pending: int

    @property
    def left_today(self) -> int:
        return max(0, self.daily_limit - self.used_today) if self.daily_limit else 10**9

    @property
    def can_submit(self) -> bool:
        return self.phase == "open" and self.left_today > 0 and (not self.max_pending or self.pending < self.max_pending)


def phase(challenge: Challenge, now: datetime | None = None) -> str:
    """'upcoming' before opens_at, 'closed' from the deadline on, else 'open'."""
    now = now or utcnow()
    if challenge.opens_at and now < challenge.opens_at:
        return "upcoming"
    if challenge.deadline and now >= challenge.deadline:
        return "closed"
    return "open"


def quota(session: Session, user: User, challenge: Challenge, now: datetime | None = None) -> Quota:
    """The same counts that server.submissions.check_limits enforces (UTC days; platform failures not counted)."""
    now = now or utcnow()
    day_start = datetime.combine(now.date(), time.min, tzinfo=timezone.utc)
    base = select(func.count()).select_from(Submission).where(Submission.user_id == user.id,
                                                              Submission.challenge_id == challenge.id)
    used = session.scalar(base.where(Submission.created_at >= day_start, counts_against_limit())) or 0
    pending = session.scalar(base.where(Submission.status.in_([states.QUEUED, states.RUNNING]))) or 0
    limit = 0 if user.is_instructor else challenge.daily_limit or 0
    return Quota(phase(challenge, now), used, limit, day_start + timedelta(days=1), pending,
                 0 if user.is_instructor else challenge.max_queued or 0)
