"""Leaderboard pages read from board_entries (podium.core.board keeps it): a page costs O(page), not O(submissions).

Before the reveal a board ranks each competitor's public row; after it, their private row (the entry
judged at the reveal), with the public rank beside it. A rank is a count on the index of the board's
order, so a student's rank never reads the rows behind them.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session, aliased

from podium.core import board as core_board
from podium.core.board import FINAL_PICKS, PRIVATE, PUBLIC, TEAM, USER, Owner  # noqa: F401 (FINAL_PICKS re-exported)
from podium.core.models import BoardEntry, BoardProgress, Challenge, Submission, Team, TeamMember, User
from podium.server import costs, team_board
from podium.server.teams import team_of

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
EXPORT_CHUNK = 1000


def display_name(user, viewer: User | None) -> str:
    """Instructors see real names; everyone else sees a student's alias when they chose one."""
    if viewer is not None and viewer.is_instructor:
        return user.username
    return user.alias or user.username


def board_of(challenge: Challenge) -> str:
    """The board a challenge ranks on now: private once revealed, else public."""
    return PRIVATE if challenge.revealed_at is not None else PUBLIC


def _order(entry=BoardEntry):
    return (entry.order_score, entry.created_at, entry.submission_id)


def _on(challenge_id: int, board: str, entry=BoardEntry):
    return (entry.challenge_id == challenge_id, entry.board == board)


def _rows_query(challenge: Challenge, board: str):
    """The board's rows in rank order, with the competitor's names and the public rank when ranking privately."""
    query = (select(BoardEntry, User.username, User.alias, Team.name.label("team_name"))
             .outerjoin(User, and_(BoardEntry.owner_kind == USER, User.id == BoardEntry.owner_id))
             .outerjoin(Team, and_(BoardEntry.owner_kind == TEAM, Team.id == BoardEntry.owner_id))
             .where(*_on(challenge.id, board)).order_by(*_order()))
    if board == PRIVATE:
        pub = aliased(BoardEntry)
        ranks = (select(pub.owner_kind, pub.owner_id,
                        func.row_number().over(order_by=_order(pub)).label("public_rank"))
                 .where(*_on(challenge.id, PUBLIC, pub)).subquery("public_ranks"))
        query = (query.add_columns(ranks.c.public_rank)
                 .outerjoin(ranks, and_(ranks.c.owner_kind == BoardEntry.owner_kind,
                                        ranks.c.owner_id == BoardEntry.owner_id)))
    return query


def _rows(session: Session, challenge: Challenge, viewer: User | None, results, first_rank: int) -> list[dict]:
    """Rows of the JSON of DESIGN.md from the query's results, ranked from first_rank."""
    results = list(results)
    revealed = challenge.revealed_at is not None
    show_private = revealed or bool(viewer and viewer.is_instructor)
    team_ids = [r.BoardEntry.owner_id for r in results if r.BoardEntry.owner_kind == TEAM]
    members = team_board.members(session, team_ids, viewer) if challenge.is_team else {}
    rows = []
    for i, r in enumerate(results):
        e = r.BoardEntry
        if e.owner_kind == TEAM:
            name = r.team_name
        else:
            name = r.alias if r.alias and not (viewer and viewer.is_instructor) else r.username
        row = {"rank": first_rank + i, "user": name}
        if challenge.is_team:
            row["members"] = members.get(e.owner_id, []) if e.owner_kind == TEAM else [name]
        row.update(public_score=e.public_score, entries=e.entries, best_at=e.created_at.isoformat(), params=e.params,
                   flops_per_input=e.flops_per_input)
        if show_private:
            row["private_score"] = e.private_score
        if revealed:
            row["public_rank"] = r.public_rank
            row["rank_change"] = r.public_rank - row["rank"]
        rows.append(row)
    return rows


def total(session: Session, challenge: Challenge) -> int:
    """How many competitors the board ranks."""
    return session.scalar(select(func.count()).select_from(BoardEntry).where(
        *_on(challenge.id, board_of(challenge)))) or 0


def build(session: Session, challenge: Challenge, viewer: User | None, limit: int = DEFAULT_LIMIT,
          offset: int = 0) -> dict:
    """One page of the leaderboard JSON of DESIGN.md for this viewer: rows offset+1 .. offset+limit, and total."""
    board = board_of(challenge)
    results = session.execute(_rows_query(challenge, board).limit(limit).offset(offset)).all()
    out = {"challenge": challenge.slug, "metric": challenge.metric, "revealed": challenge.revealed_at is not None}
    if challenge.is_team:
        out["team_size"] = challenge.team_size
    out["rows"] = _rows(session, challenge, viewer, results, offset + 1)
    out.update(costs.view(challenge, cost_rows(session, challenge, viewer) if challenge.ranking == "pareto" else []))
    out["total"] = total(session, challenge)
    return out


def cost_rows(session: Session, challenge: Challenge, viewer: User | None) -> list[dict]:
    """Every competitor's public row reduced to what the cost views need (user, public_score, params, flops).

    One statement over the board's rows (they carry their submission's cost), however many submissions were made.
    """
    query = (select(BoardEntry.owner_kind, BoardEntry.public_score, User.username, User.alias,
                    Team.name.label("team_name"), BoardEntry.params, BoardEntry.flops_per_input)
             .outerjoin(User, and_(BoardEntry.owner_kind == USER, User.id == BoardEntry.owner_id))
             .outerjoin(Team, and_(BoardEntry.owner_kind == TEAM, Team.id == BoardEntry.owner_id))
             .where(*_on(challenge.id, PUBLIC)).order_by(*_order()))
    instructor = bool(viewer and viewer.is_instructor)
    return [{"user": r.team_name if r.owner_kind == TEAM else (r.alias if r.alias and not instructor else r.username),
             "public_score": r.public_score, "params": r.params, "flops_per_input": r.flops_per_input}
            for r in session.execute(query)]


def all_rows(session: Session, challenge: Challenge, viewer: User | None) -> Iterator[dict]:
    """Every row of the board in rank order, read EXPORT_CHUNK at a time (for exports)."""
    board = board_of(challenge)
    after, rank = None, 1
    while True:
        query = _rows_query(challenge, board)
        if after is not None:
            query = query.where(tuple_(*_order()) > tuple_(*after))
        results = session.execute(query.limit(EXPORT_CHUNK)).all()
        yield from _rows(session, challenge, viewer, results, rank)
        if len(results) < EXPORT_CHUNK:
            return
        last = results[-1].BoardEntry
        after, rank = (last.order_score, last.created_at, last.submission_id), rank + len(results)


def owner_for(session: Session, challenge: Challenge, user: User) -> Owner:
    """The competitor a user's submissions count for: their team in a team challenge, else themselves."""
    team = team_of(session, challenge, user) if challenge.is_team else None
    return (TEAM, team.id) if team is not None else (USER, user.id)


def _entry(session: Session, challenge_id: int, board: str, owner: Owner) -> BoardEntry | None:
    return session.scalar(select(BoardEntry).where(*_on(challenge_id, board), BoardEntry.owner_kind == owner[0],
                                                   BoardEntry.owner_id == owner[1]))


def _rank(session: Session, entry: BoardEntry) -> int:
    """1 + the rows ahead of this one on its board: a range count on the board's index."""
    ahead = tuple_(*_order()) < tuple_(entry.order_score, entry.created_at, entry.submission_id)
    return 1 + (session.scalar(select(func.count()).select_from(BoardEntry)
                               .where(*_on(entry.challenge_id, entry.board), ahead)) or 0)


def rank_on(session: Session, challenge: Challenge, owner: Owner, board: str = PUBLIC) -> int | None:
    """The rank of one competitor on a board, or None without an eligible entry (two index lookups)."""
    entry = _entry(session, challenge.id, board, owner)
    return None if entry is None else _rank(session, entry)


def user_rank(session: Session, challenge: Challenge, user_id: int) -> int | None:
    """The public rank of one student of an individual challenge, or None when they have no eligible entry."""
    return rank_on(session, challenge, (USER, user_id))


def rank_of(session: Session, challenge: Challenge, user: User) -> int | None:
    """The public rank of the row a user's submissions count for: their team's, in a team challenge."""
    return rank_on(session, challenge, owner_for(session, challenge, user))


def rank_of_submission(session: Session, sub: Submission) -> int | None:
    """The public rank of the row a submission counts for (its team, or its uploader)."""
    return rank_on(session, sub.challenge, core_board.owner_of(sub.challenge.is_team, sub.team_id, sub.user_id))


def own_row(session: Session, challenge: Challenge, viewer: User | None, owner: Owner) -> dict | None:
    """One competitor's row of the board as it ranks now (rank included), for the projector's 'you' line."""
    board = board_of(challenge)
    entry = _entry(session, challenge.id, board, owner)
    if entry is None:
        return None
    query = _rows_query(challenge, board).where(BoardEntry.id == entry.id)
    return _rows(session, challenge, viewer, session.execute(query).all(), _rank(session, entry))[0]


def names(session: Session, owners: list[Owner], viewer: User | None) -> dict[Owner, str]:
    """The names these competitors show under, for this viewer (a team's name, or a student's public name)."""
    out: dict[Owner, str] = {}
    user_ids = [i for k, i in owners if k == USER]
    team_ids = [i for k, i in owners if k == TEAM]
    if user_ids:
        for user in session.scalars(select(User).where(User.id.in_(user_ids))):
            out[(USER, user.id)] = display_name(user, viewer)
    if team_ids:
        for team_id, name in session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))):
            out[(TEAM, team_id)] = name
    return out


def top_owners(session: Session, challenge: Challenge, n: int) -> list[Owner]:
    """The n best competitors on the public board, best first (reads n index entries)."""
    return [tuple(r) for r in session.execute(select(BoardEntry.owner_kind, BoardEntry.owner_id)
                                              .where(*_on(challenge.id, PUBLIC)).order_by(*_order()).limit(n))]


def top_users(session: Session, challenge: Challenge, n: int) -> list[int]:
    """Ids of the n best students on the public board of an individual challenge, best first."""
    return [owner_id for _, owner_id in top_owners(session, challenge, n)]


def progress(session: Session, challenge: Challenge, owners: list[Owner]) -> dict[Owner, list[tuple[datetime, float]]]:
    """For each competitor, the points where its best public score improved, oldest first (for charts).

    Reads these competitors' rows of board_progress (kept with the board): a few per competitor, however
    long the class's history.
    """
    if not owners:
        return {}
    rows = session.execute(select(BoardProgress.owner_kind, BoardProgress.owner_id, BoardProgress.created_at,
                                  BoardProgress.public_score)
                           .where(BoardProgress.challenge_id == challenge.id, core_board.progress_of(owners))
                           .order_by(BoardProgress.created_at, BoardProgress.submission_id)).all()
    out: dict[Owner, list] = {o: [] for o in owners}
    for r in rows:
        out[(r.owner_kind, r.owner_id)].append((r.created_at, r.public_score))
    return out


def history(session: Session, challenge: Challenge, user_ids: list[int]) -> list[tuple[int, datetime, float]]:
    """(user_id, time, public score) where each of these students' best public score improved, oldest first."""
    points = progress(session, challenge, [(USER, u) for u in user_ids])
    return sorted(((o[1], t, v) for o, line in points.items() for t, v in line), key=lambda p: p[1])


def final_entries(session: Session, challenge: Challenge) -> dict[int, BoardEntry]:
    """Each student's entry judged at the reveal (its private score is their final score), by user id.

    In a team challenge every current member gets the team's entry.
    """
    entries = session.scalars(select(BoardEntry).where(*_on(challenge.id, PRIVATE))).all()
    out = {e.owner_id: e for e in entries if e.owner_kind == USER}
    teams = {e.owner_id: e for e in entries if e.owner_kind == TEAM}
    if teams:
        for team_id, user_id in session.execute(select(TeamMember.team_id, TeamMember.user_id)
                                                .where(TeamMember.challenge_id == challenge.id)):
            if team_id in teams:
                out[user_id] = teams[team_id]
    return out


def board_statements(challenge: Challenge) -> list:
    """The SELECTs of a board's first page, for EXPLAIN in the benchmark."""
    return [_rows_query(challenge, board_of(challenge)).limit(DEFAULT_LIMIT),
            select(func.count()).select_from(BoardEntry).where(*_on(challenge.id, board_of(challenge)))]
