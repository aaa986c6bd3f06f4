"""Leaderboard: each student's best public score; after the reveal, private ranks of final picks.

The ranking is done by the database with window functions, so a page costs one SQL statement
however many submissions a class has made; Python only shapes the few hundred result rows.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from server import states
from server.models import Challenge, Score, Submission, User

FINAL_PICKS = 2


def _eligible(challenge_id: int):
    """Every scored, non-disqualified entry of a challenge with its per-user window columns (a CTE)."""
    by_user = Score.user_id
    public_order = (Score.public_score.desc(), Submission.created_at, Score.submission_id)
    return (
        select(Score.user_id, Score.submission_id, Score.public_score, Score.private_score,
               Submission.created_at, Submission.is_final,
               func.row_number().over(partition_by=by_user, order_by=public_order).label("public_pos"),
               func.count().over(partition_by=by_user).label("entries"),
               func.max(case((Submission.is_final.is_(True), 1), else_=0)).over(partition_by=by_user).label("has_final"))
        .join(Submission, Submission.id == Score.submission_id)
        .join(User, User.id == Score.user_id)
        .where(Score.challenge_id == challenge_id, Submission.status == states.SCORED,
               Submission.disqualified_reason.is_(None), User.disqualified_reason.is_(None))
        .cte("eligible")
    )


def _best_public(e):
    """Each user's best public entry (ties go to the earlier submission) with its public rank (a CTE)."""
    return (
        select(e, func.row_number().over(order_by=(e.c.public_score.desc(), e.c.created_at, e.c.submission_id))
               .label("public_rank"))
        .where(e.c.public_pos == 1)
        .cte("best")
    )


def _final_private(e):
    """Each user's counted private entry: best private among their picks, or among their best two public ones."""
    picks = or_(and_(e.c.has_final == 1, e.c.is_final.is_(True)), and_(e.c.has_final == 0, e.c.public_pos <= FINAL_PICKS))
    ranked = (
        select(e.c.user_id, e.c.submission_id, e.c.public_score, e.c.private_score, e.c.created_at,
               func.row_number().over(partition_by=e.c.user_id,
                                      order_by=(e.c.private_score.desc(), e.c.created_at, e.c.submission_id))
               .label("private_pos"))
        .where(picks)
        .cte("picks")
    )
    return select(ranked).where(ranked.c.private_pos == 1).cte("final")


def board_rows(session: Session, challenge_id: int, revealed: bool) -> list:
    """One statement: per user their best public entry, public rank, entry count, name, and (revealed) final entry."""
    e = _eligible(challenge_id)
    best = _best_public(e)
    cols = [best.c.user_id, best.c.submission_id, best.c.public_score, best.c.private_score, best.c.created_at,
            best.c.entries, best.c.public_rank, User.username, User.alias]
    query = select(*cols).join(User, User.id == best.c.user_id)
    if revealed:
        final = _final_private(e)
        query = (query.add_columns(final.c.public_score.label("final_public"), final.c.private_score.label("final_private"),
                                   final.c.created_at.label("final_at"), final.c.submission_id.label("final_id"))
                 .join(final, final.c.user_id == best.c.user_id)
                 .order_by(final.c.private_score.desc(), final.c.created_at, final.c.submission_id))
    else:
        query = query.order_by(best.c.public_rank)
    return session.execute(query).all()


def display_name(user, viewer: User | None) -> str:
    """Instructors see real names; everyone else sees a student's alias when they chose one."""
    if viewer is not None and viewer.is_instructor:
        return user.username
    return user.alias or user.username


def build(session: Session, challenge: Challenge, viewer: User | None) -> dict:
    """The leaderboard JSON of DESIGN.md, for this viewer."""
    revealed = challenge.revealed_at is not None
    show_private = revealed or bool(viewer and viewer.is_instructor)
    rows = []
    for i, r in enumerate(board_rows(session, challenge.id, revealed)):
        rank = i + 1
        row = {
            "rank": rank,
            "user": display_name(r, viewer),
            "public_score": r.final_public if revealed else r.public_score,
            "entries": r.entries,
            "best_at": (r.final_at if revealed else r.created_at).isoformat(),
        }
        if show_private:
            row["private_score"] = r.final_private if revealed else r.private_score
        if revealed:
            row["public_rank"] = r.public_rank
            row["rank_change"] = r.public_rank - rank
        rows.append(row)
    return {"challenge": challenge.slug, "metric": challenge.metric, "revealed": revealed, "rows": rows}


def user_rank(session: Session, challenge: Challenge, user_id: int) -> int | None:
    """The public rank of one user, or None when they have no scored entry (one statement)."""
    best = _best_public(_eligible(challenge.id))
    return session.scalar(select(best.c.public_rank).where(best.c.user_id == user_id))


def history(session: Session, challenge: Challenge) -> list[tuple[int, datetime, float]]:
    """(user_id, time, public score) of every eligible scored entry, oldest first, for charts."""
    e = _eligible(challenge.id)
    return [tuple(r) for r in session.execute(select(e.c.user_id, e.c.created_at, e.c.public_score)
                                              .order_by(e.c.created_at, e.c.submission_id)).all()]


def count_scored(session: Session, challenge_id: int) -> int:
    """How many scored submissions a challenge has."""
    return session.scalar(select(func.count()).select_from(Score).where(Score.challenge_id == challenge_id)) or 0
