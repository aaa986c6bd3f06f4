"""Leaderboard: each student's best public score; after the reveal, private ranks of final picks."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server import states
from server.models import Challenge, Score, Submission, User

FINAL_PICKS = 2


@dataclass
class Entry:
    """One scored, non-disqualified submission as the leaderboard sees it."""

    user_id: int
    submission_id: int
    public_score: float
    private_score: float
    created_at: datetime
    is_final: bool


def _entries(session: Session, challenge_id: int) -> list[Entry]:
    """Every eligible scored submission of a challenge, in one query."""
    rows = session.execute(
        select(Score.user_id, Score.submission_id, Score.public_score, Score.private_score,
               Submission.created_at, Submission.is_final)
        .join(Submission, Submission.id == Score.submission_id)
        .join(User, User.id == Score.user_id)
        .where(Score.challenge_id == challenge_id, Submission.status == states.SCORED,
               Submission.disqualified_reason.is_(None), User.disqualified_reason.is_(None))
    ).all()
    return [Entry(*row) for row in rows]


def _public_key(e: Entry):
    return (-e.public_score, e.created_at, e.submission_id)


def best_public(entries: list[Entry]) -> dict[int, Entry]:
    """Each user's best public entry; ties go to the earlier submission."""
    best: dict[int, Entry] = {}
    for e in sorted(entries, key=_public_key):
        best.setdefault(e.user_id, e)
    return best


def final_private(entries: list[Entry]) -> dict[int, Entry]:
    """Each user's counted private entry: best private among their picks, or among their best two public ones."""
    by_user: dict[int, list[Entry]] = {}
    for e in entries:
        by_user.setdefault(e.user_id, []).append(e)
    chosen: dict[int, Entry] = {}
    for user_id, items in by_user.items():
        picks = [e for e in items if e.is_final] or sorted(items, key=_public_key)[:FINAL_PICKS]
        chosen[user_id] = min(picks, key=lambda e: (-e.private_score, e.created_at, e.submission_id))
    return chosen


def display_name(user: User, viewer: User | None) -> str:
    """Instructors see real names; everyone else sees a student's alias when they chose one."""
    if viewer is not None and viewer.is_instructor:
        return user.username
    return user.alias or user.username


def build(session: Session, challenge: Challenge, viewer: User | None) -> dict:
    """The leaderboard JSON of DESIGN.md, for this viewer."""
    entries = _entries(session, challenge.id)
    counts: dict[int, int] = {}
    for e in entries:
        counts[e.user_id] = counts.get(e.user_id, 0) + 1
    public_best = best_public(entries)
    public_order = sorted(public_best.values(), key=_public_key)
    public_rank = {e.user_id: i + 1 for i, e in enumerate(public_order)}
    revealed = challenge.revealed_at is not None
    show_private = revealed or bool(viewer and viewer.is_instructor)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(list(counts)))).all()} if counts else {}

    if revealed:
        final = final_private(entries)
        order = sorted(final.values(), key=lambda e: (-e.private_score, e.created_at, e.submission_id))
    else:
        order = public_order
    rows = []
    for i, e in enumerate(order):
        best = public_best[e.user_id]
        row = {
            "rank": i + 1,
            "user": display_name(users[e.user_id], viewer),
            "public_score": best.public_score if not revealed else e.public_score,
            "entries": counts[e.user_id],
            "best_at": (best if not revealed else e).created_at.isoformat(),
        }
        if show_private:
            row["private_score"] = e.private_score if revealed else best.private_score
        if revealed:
            row["public_rank"] = public_rank[e.user_id]
            row["rank_change"] = public_rank[e.user_id] - (i + 1)
        rows.append(row)
    return {"challenge": challenge.slug, "metric": challenge.metric, "revealed": revealed, "rows": rows}


def user_rank(session: Session, challenge: Challenge, user_id: int) -> int | None:
    """The public rank of one user, or None when they have no scored entry."""
    board = best_public(_entries(session, challenge.id))
    order = sorted(board.values(), key=_public_key)
    for i, e in enumerate(order):
        if e.user_id == user_id:
            return i + 1
    return None


def history(session: Session, challenge: Challenge) -> list[tuple[int, datetime, float]]:
    """(user_id, time, public score) of every eligible scored entry, oldest first, for charts."""
    return sorted(((e.user_id, e.created_at, e.public_score) for e in _entries(session, challenge.id)),
                  key=lambda t: t[1])


def count_scored(session: Session, challenge_id: int) -> int:
    """How many scored submissions a challenge has."""
    return session.scalar(select(func.count()).select_from(Score).where(Score.challenge_id == challenge_id)) or 0
