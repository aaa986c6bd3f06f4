"""CSV exports for instructors: the final leaderboard and a grade sheet with one row per student."""
from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core.models import Challenge, Submission, Team, TeamMember, User
from podium.server import leaderboard

# OWASP's CSV-injection rule: a spreadsheet reads a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def safe_cell(value):
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a leading apostrophe.

    Numbers (a rank change of -2, a negative score) stay numbers.
    """
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        return value
    if value.lstrip(" ").startswith(FORMULA_START):
        return "'" + value
    return value


def _lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """CSV text, one line at a time, so an export of any size streams."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in itertools.chain([header], rows):
        writer.writerow([safe_cell(cell) for cell in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def stream(db, make, challenge_id: int, viewer_id: int) -> Iterator[str]:
    """The lines of export `make`, read in a session of their own that lives as long as the response streams.

    The request's session closes when the view returns, before the first line is sent.
    """
    with db.session() as s:
        yield from make(s, s.get(Challenge, challenge_id), s.get(User, viewer_id))


def _fmt(value) -> str:
    return "" if value is None else f"{value:.6f}" if isinstance(value, float) else str(value)


def leaderboard_csv(session: Session, challenge: Challenge, instructor: User) -> Iterator[str]:
    """Every row of the leaderboard as the instructor sees it (private ranks once revealed), real names; streamed."""
    header = ["rank", "user", "public_score", "private_score", "public_rank", "rank_change", "entries", "best_at",
              "params", "flops_per_input"]
    if challenge.is_team:
        header.append("members")

    def rows():
        for r in leaderboard.all_rows(session, challenge, instructor):
            row = [r["rank"], r["user"], _fmt(r["public_score"]), _fmt(r.get("private_score")), r.get("public_rank", ""),
                   r.get("rank_change", ""), r["entries"], r["best_at"], _fmt(r["params"]), _fmt(r["flops_per_input"])]
            if challenge.is_team:
                row.append("; ".join(r["members"]))
            yield row
    return _lines(header, rows())


def grades_csv(session: Session, challenge: Challenge, instructor: User) -> Iterator[str]:
    """One row per student (course roster plus anyone who submitted): rank and scores, blank where none.

    In a team challenge every member gets the team's result, and the team's name is a column.
    """
    by_user = {r["user"]: r for r in leaderboard.all_rows(session, challenge, instructor)}
    team_of: dict[int, str] = {}
    if challenge.is_team:
        team_of = {user_id: name for user_id, name in session.execute(
            select(TeamMember.user_id, Team.name).join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.challenge_id == challenge.id))}
    submitters = select(Submission.user_id).where(Submission.challenge_id == challenge.id)
    cond = User.id.in_(submitters) | User.id.in_(select(TeamMember.user_id).where(TeamMember.challenge_id == challenge.id))
    if challenge.course_id is not None:
        cond = cond | (User.course_id == challenge.course_id)
    students = session.scalars(select(User).where(User.role == "student", cond).order_by(User.username)).all()
    header = ["username", "display_name", "email", "alias", "rank", "public_score", "private_score", "entries",
              "board", "disqualified", "params", "flops_per_input"]
    if challenge.is_team:
        header.insert(4, "team")
    kind = "private" if challenge.revealed_at is not None else "public (not yet revealed)"
    rows = []
    for u in students:
        team = team_of.get(u.id)
        if challenge.is_team:  # the team's row; a student in no team has no result
            r = by_user.get(team, {}) if team else {}
        else:
            r = by_user.get(u.username, {})
        row = [u.username, u.display_name, u.email or "", u.alias or "", r.get("rank", ""),
               _fmt(r.get("public_score")), _fmt(r.get("private_score")), r.get("entries", 0), kind,
               u.disqualified_reason or "", _fmt(r.get("params")), _fmt(r.get("flops_per_input"))]
        if challenge.is_team:
            row.insert(4, team or "")
        rows.append(row)
    return _lines(header, rows)
