"""What a student does with their own submissions: list them, read per-class results, pick finals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from podium.core import board, states
from podium.core.board import FINAL_PICKS
from podium.core.models import Challenge, Submission, Team, User, utcnow
from podium.server.lifecycle import ARCHIVED
from podium.server.submissions import Competitor, day_bounds, find_competitor, usage


class PickError(ValueError):
    """A final pick that is not allowed; the message says why."""


def my_submissions(session: Session, user: User, challenge: Challenge) -> list[Submission]:
    """The user's submissions to a challenge (all of their team's, in a team challenge), newest first, scores loaded."""
    competitor = find_competitor(session, user, challenge)
    owns = competitor.owns() if competitor is not None else and_(Submission.user_id == user.id,
                                                                Submission.team_id.is_(None))
    return list(session.scalars(
        select(Submission).options(selectinload(Submission.score), selectinload(Submission.user))
        .where(Submission.challenge_id == challenge.id, owns)
        .order_by(Submission.id.desc())))


def owner_of(sub: Submission) -> Competitor:
    """The competitor a submission counts for: its team when it has one, else its uploader."""
    return Competitor(sub.user_id, sub.team)


def may_pick(session: Session, user: User, sub: Submission) -> bool:
    """Its uploader picks a submission's final status; in a team, any current member does."""
    mine = find_competitor(session, user, sub.challenge)
    if sub.team_id is not None:
        return mine is not None and mine.team_id == sub.team_id
    return sub.user_id == user.id


def set_final(session: Session, user: User, sub: Submission, final: bool) -> None:
    """Mark (or unmark) a scored submission as a final pick; at most FINAL_PICKS per student, or per team."""
    if not may_pick(session, user, sub):
        raise PickError("only your own (or your team's) submissions can be picked")
    if final and sub.status != states.SCORED:
        raise PickError("only scored submissions can be picked as final")
    if final and not sub.is_final:
        owner = owner_of(sub)
        owner.lock(session)  # two members picking at once cannot make three picks
        picked = session.scalar(select(func.count()).select_from(Submission).where(
            owner.owns(), Submission.challenge_id == sub.challenge_id, Submission.is_final.is_(True)))
        if picked >= FINAL_PICKS:
            whose = "your team already picked" if sub.team_id is not None else "you already picked"
            raise PickError(f"{whose} {FINAL_PICKS} final submissions; unpick one first")
    sub.is_final = final
    session.flush()
    board.refresh_submission(session, sub.id)


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

    phase: str  # "upcoming", "open", "closed" or "archived"
    used_today: int
    daily_limit: int
    resets_at: datetime
    pending: int
    max_pending: int
    team: Team | None = None
    needs_team: bool = False

    @property
    def left_today(self) -> int:
        return max(0, self.daily_limit - self.used_today) if self.daily_limit else 10**9

    @property
    def can_submit(self) -> bool:
        return not self.needs_team and self.phase == "open" and self.left_today > 0 and (not self.max_pending or self.pending < self.max_pending)


def phase(challenge: Challenge, now: datetime | None = None) -> str:
    """'archived' for an archived challenge, 'upcoming' before opens_at, 'closed' from the deadline on, else 'open'."""
    now = now or utcnow()
    if challenge.state == ARCHIVED:
        return "archived"
    if challenge.opens_at and now < challenge.opens_at:
        return "upcoming"
    if challenge.deadline and now >= challenge.deadline:
        return "closed"
    return "open"


def quota(session: Session, user: User, challenge: Challenge, now: datetime | None = None) -> Quota:
    """The same counts that podium.server.submissions.check_limits enforces (per team in a team challenge)."""
    now = now or utcnow()
    _, resets_at = day_bounds(now)
    competitor = find_competitor(session, user, challenge)
    used, pending = usage(session, competitor, challenge, now) if competitor is not None else (0, 0)
    limit = 0 if user.is_instructor else challenge.daily_limit or 0
    return Quota(phase(challenge, now), used, limit, resets_at, pending,
                 0 if user.is_instructor else challenge.max_queued or 0,
                 team=competitor.team if competitor is not None else None, needs_team=competitor is None)
