"""Leaderboard: each student's best public score; after the reveal, private ranks of final picks.

A page costs a fixed number of SQL statements however many submissions a class has made, and
none of them reads every submission: per student, an index walk finds the best entries
(scores by challenge, user, public score), and counts come from the eligible-submissions index.
Python then ranks the few hundred rows that come back.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from server import states
from server.models import Challenge, Score, Submission, User

FINAL_PICKS = 2


@dataclass(frozen=True)
class Entry:
    """One scored, eligible submission as the leaderboard sees it."""

    user_id: int
    submission_id: int
    public_score: float
    private_score: float
    created_at: datetime


def _public_key(e: Entry):
    return (-e.public_score, e.created_at, e.submission_id)


def _private_key(e: Entry):
    return (-e.private_score, e.created_at, e.submission_id)


def _eligible(challenge_id: int):
    """Conditions on Submission of a scored, non-disqualified entry (literal status, so partial indexes apply)."""
    return (Submission.challenge_id == challenge_id, Submission.status == literal(states.SCORED, literal_execute=True),
            Submission.disqualified_reason.is_(None))


def _nth_public(challenge_id: int, user_id, n: int):
    """Correlated subquery: the submission id of a user's n-th best public entry (0 = best)."""
    return (select(Score.submission_id)
            .join(Submission, Submission.id == Score.submission_id)
            .where(Score.challenge_id == challenge_id, Score.user_id == user_id, *_eligible(challenge_id))
            .order_by(Score.public_score.desc(), Submission.created_at, Score.submission_id)
            .limit(1).offset(n).scalar_subquery())


def _students_query(challenge_id: int, picks: int):
    counts = (select(Submission.user_id, func.count().label("entries"))
              .where(*_eligible(challenge_id)).group_by(Submission.user_id).subquery("counts"))
    cols = [counts.c.user_id, counts.c.entries, User.username, User.alias]
    cols += [_nth_public(challenge_id, counts.c.user_id, n).label(f"pick{n}") for n in range(picks)]
    return select(*cols).join(User, User.id == counts.c.user_id).where(User.disqualified_reason.is_(None))


def _finals_query(challenge_id: int):
    return (select(Score.user_id, Score.submission_id, Score.public_score, Score.private_score, Submission.created_at)
            .join(Score, Score.submission_id == Submission.id)
            .where(*_eligible(challenge_id), Submission.is_final.is_(True)))


def students(session: Session, challenge_id: int, picks: int = 1) -> list:
    """Statement 1: per eligible student, entry count, name and the ids of their `picks` best public entries."""
    return session.execute(_students_query(challenge_id, picks)).all()


def entries_by_id(session: Session, ids: list[int]) -> dict[int, Entry]:
    """Statement 2: the scores and times of these submissions."""
    if not ids:
        return {}
    rows = session.execute(select(Score.user_id, Score.submission_id, Score.public_score, Score.private_score,
                                  Submission.created_at)
                           .join(Submission, Submission.id == Score.submission_id)
                           .where(Score.submission_id.in_(ids))).all()
    return {r.submission_id: Entry(*r) for r in rows}


def final_picks(session: Session, challenge_id: int) -> dict[int, list[Entry]]:
    """Statement 3 (after the reveal): the entries students marked as final, by user."""
    rows = session.execute(_finals_query(challenge_id)).all()
    out: dict[int, list[Entry]] = {}
    for r in rows:
        out.setdefault(r.user_id, []).append(Entry(*r))
    return out


def display_name(user, viewer: User | None) -> str:
    """Instructors see real names; everyone else sees a student's alias when they chose one."""
    if viewer is not None and viewer.is_instructor:
        return user.username
    return user.alias or user.username


def build(session: Session, challenge: Challenge, viewer: User | None) -> dict:
    """The leaderboard JSON of DESIGN.md, for this viewer."""
    revealed = challenge.revealed_at is not None
    show_private = revealed or bool(viewer and viewer.is_instructor)
    people = students(session, challenge.id, FINAL_PICKS if revealed else 1)
    ids = [getattr(p, f"pick{n}") for p in people for n in range(FINAL_PICKS if revealed else 1)]
    entries = entries_by_id(session, [i for i in ids if i is not None])
    best = {p.user_id: entries[p.pick0] for p in people}
    public_order = sorted(best.values(), key=_public_key)
    public_rank = {e.user_id: i + 1 for i, e in enumerate(public_order)}
    by_user = {p.user_id: p for p in people}
    if revealed:
        marked = final_picks(session, challenge.id)
        counted = {}
        for p in people:
            picks = marked.get(p.user_id) or [entries[i] for i in (p.pick0, p.pick1) if i is not None]
            counted[p.user_id] = min(picks, key=_private_key)
        order = sorted(counted.values(), key=_private_key)
    else:
        order = public_order
    rows = []
    for i, e in enumerate(order):
        p = by_user[e.user_id]
        row = {"rank": i + 1, "user": display_name(p, viewer), "public_score": e.public_score, "entries": p.entries,
               "best_at": e.created_at.isoformat()}
        if show_private:
            row["private_score"] = e.private_score
        if revealed:
            row["public_rank"] = public_rank[e.user_id]
            row["rank_change"] = public_rank[e.user_id] - (i + 1)
        rows.append(row)
    return {"challenge": challenge.slug, "metric": challenge.metric, "revealed": revealed, "rows": rows}


def user_rank(session: Session, challenge: Challenge, user_id: int) -> int | None:
    """The public rank of one user, or None when they have no eligible scored entry (two statements)."""
    people = {p.user_id: p.pick0 for p in students(session, challenge.id)}
    if user_id not in people:
        return None
    entries = entries_by_id(session, list(people.values()))
    mine = _public_key(entries[people[user_id]])
    return 1 + sum(1 for e in entries.values() if _public_key(e) < mine)


def top_users(session: Session, challenge: Challenge, n: int) -> list[int]:
    """Ids of the n best students on the public board, best first (two statements)."""
    people = students(session, challenge.id)
    entries = entries_by_id(session, [p.pick0 for p in people])
    return [e.user_id for e in sorted(entries.values(), key=_public_key)[:n]]


def history(session: Session, challenge: Challenge, user_ids: list[int] | None = None) -> list[tuple[int, datetime, float]]:
    """(user_id, time, public score) of every eligible scored entry, oldest first, for charts; only these users if given.

    Charts of a few students should pass their ids: a whole class's history is every submission.
    """
    query = (select(Score.user_id, Submission.created_at, Score.public_score)
             .join(Submission, Submission.id == Score.submission_id)
             .join(User, User.id == Score.user_id)
             .where(*_eligible(challenge.id), User.disqualified_reason.is_(None))
             .order_by(Submission.created_at, Submission.id))
    if user_ids is not None:
        query = query.where(Submission.user_id.in_(user_ids))
    return [tuple(r) for r in session.execute(query).all()]


def count_scored(session: Session, challenge_id: int) -> int:
    """How many scored submissions a challenge has."""
    return session.scalar(select(func.count()).select_from(Score).where(Score.challenge_id == challenge_id)) or 0


def board_statements(challenge_id: int, revealed: bool) -> list:
    """The SELECTs of a board other than the fetch by ids, for EXPLAIN in the benchmark."""
    if revealed:
        return [_students_query(challenge_id, FINAL_PICKS), _finals_query(challenge_id)]
    return [_students_query(challenge_id, 1)]
