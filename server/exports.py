"""CSV exports for instructors: the final leaderboard and a grade sheet with one row per student."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import leaderboard
from server.models import Challenge, Submission, User


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _fmt(value) -> str:
    return "" if value is None else f"{value:.6f}" if isinstance(value, float) else str(value)


def leaderboard_csv(session: Session, challenge: Challenge, instructor: User) -> str:
    """The leaderboard as the instructor sees it (private ranks once revealed), real names."""
    board = leaderboard.build(session, challenge, instructor)
    header = ["rank", "user", "public_score", "private_score", "public_rank", "rank_change", "entries", "best_at"]
    rows = [[r["rank"], r["user"], _fmt(r["public_score"]), _fmt(r.get("private_score")), r.get("public_rank", ""),
             r.get("rank_change", ""), r["entries"], r["best_at"]] for r in board["rows"]]
    return _csv(header, rows)


def grades_csv(session: Session, challenge: Challenge, instructor: User) -> str:
    """One row per student (course roster plus anyone who submitted): rank and scores, blank where none."""
    board = leaderboard.build(session, challenge, instructor)
    by_user = {r["user"]: r for r in board["rows"]}
    submitters = select(Submission.user_id).where(Submission.challenge_id == challenge.id)
    cond = User.id.in_(submitters)
    if challenge.course_id is not None:
        cond = cond | (User.course_id == challenge.course_id)
    students = session.scalars(select(User).where(User.role == "student", cond).order_by(User.username)).all()
    header = ["username", "display_name", "email", "alias", "rank", "public_score", "private_score", "entries",
              "board", "disqualified"]
    kind = "private" if board["revealed"] else "public (not yet revealed)"
    rows = []
    for u in students:
        r = by_user.get(u.username, {})
        rows.append([u.username, u.display_name, u.email or "", u.alias or "", r.get("rank", ""),
                     _fmt(r.get("public_score")), _fmt(r.get("private_score")), r.get("entries", 0), kind,
                     u.disqualified_reason or ""])
    return _csv(header, rows)
