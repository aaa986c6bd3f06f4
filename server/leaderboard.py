"""Leaderboard: each student's best public score; after the reveal, private ranks of final picks.

A page costs a fixed number of SQL statements however many submissions a class has made (one,
two after the reveal), and none of them reads every submission: per student, an index walk finds
the best entries (scores by challenge, user, public score), and counts come from the
eligible-submissions index. Python then ranks the few hundred rows that come back.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, or_, select
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


@dataclass(frozen=True)
class Student:
    """An eligible student on the board: entry count, names and their best public entries, best first."""

    user_id: int
    entries: int
    username: str
    alias: str | None
    best: list[Entry]


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


def _board_query(challenge_id: int, picks: int):
    """Each eligible student's `picks` best public entries with their scores: one row per entry."""
    people = _students_query(challenge_id, picks).subquery("people")
    return (select(people.c.user_id, people.c.entries, people.c.username, people.c.alias, Score.submission_id,
                   Score.public_score, Score.private_score, Submission.created_at)
            .join(Score, or_(*(Score.submission_id == people.c[f"pick{n}"] for n in range(picks))))
            .join(Submission, Submission.id == Score.submission_id))


def _finals_query(challenge_id: int):
    return (select(Score.user_id, Score.submission_id, Score.public_score, Score.private_score, Submission.created_at)
            .join(Score, Score.submission_id == Submission.id)
            .where(*_eligible(challenge_id), Submission.is_final.is_(True)))


def students(session: Session, challenge_id: int, picks: int = 1) -> dict[int, Student]:
    """Statement 1: per eligible student, entry count, names and their `picks` best public entries."""
    out: dict[int, Student] = {}
    for r in session.execute(_board_query(challenge_id, picks)).all():
        student = out.get(r.user_id) or out.setdefault(r.user_id, Student(r.user_id, r.entries, r.username, r.alias, []))
        student.best.append(Entry(r.user_id, r.submission_id, r.public_score, r.private_score, r.created_at))
    for student in out.values():
        student.best.sort(key=_public_key)
    return out


def final_picks(session: Session, challenge_id: int) -> dict[int, list[Entry]]:
    """Statement 2 (after the reveal): the entries students marked as final, by user."""
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


def board_students(session: Session, challenge: Challenge) -> dict[int, Student]:
    """The students a board ranks, with as many best entries as it needs (more after the reveal)."""
    return students(session, challenge.id, FINAL_PICKS if challenge.revealed_at is not None else 1)


def build(session: Session, challenge: Challenge, viewer: User | None,
          people: dict[int, Student] | None = None) -> dict:
    """The leaderboard JSON of DESIGN.md, for this viewer; people: board_students() when already read."""
    revealed = challenge.revealed_at is not None
    show_private = revealed or bool(viewer and viewer.is_instructor)
    people = board_students(session, challenge) if people is None else people
    public_order = sorted((p.best[0] for p in people.values()), key=_public_key)
    public_rank = {e.user_id: i + 1 for i, e in enumerate(public_order)}
    if revealed:
        marked = final_picks(session, challenge.id)
        # A student who marked nothing is judged on their best public entries, as many as they could have marked.
        order = sorted((min(marked.get(p.user_id) or p.best, key=_private_key) for p in people.values()),
                       key=_private_key)
    else:
        order = public_order
    rows = []
    for i, e in enumerate(order):
        p = people[e.user_id]
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
    """The public rank of one user, or None when they have no eligible scored entry (one statement)."""
    people = students(session, challenge.id)
    if user_id not in people:
        return None
    mine = _public_key(people[user_id].best[0])
    return 1 + sum(1 for p in people.values() if _public_key(p.best[0]) < mine)


def top_users(session: Session, challenge: Challenge, n: int, people: dict[int, Student] | None = None) -> list[int]:
    """Ids of the n best students on the public board, best first (one statement, none given people)."""
    people = students(session, challenge.id) if people is None else people
    best = sorted((p.best[0] for p in people.values()), key=_public_key)
    return [e.user_id for e in best[:n]]


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
    """The SELECTs of a board, for EXPLAIN in the benchmark."""
    if revealed:
        return [_board_query(challenge_id, FINAL_PICKS), _finals_query(challenge_id)]
    return [_board_query(challenge_id, 1)]
