"""What a student does with their own submissions: list them, read per-class results, pick finals."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server import states
from server.leaderboard import FINAL_PICKS
from server.models import Challenge, Submission, User


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
