"""The leaderboard's ranking entries (table board_entries), kept in the transaction of every move that changes them.

One place for the ranking rules. A competitor is a student, or in a team challenge the team a submission
was made for (a submission without a team ranks as its uploader). An entry is eligible when its
submission is scored, neither it nor its uploader is disqualified. Per competitor and challenge:
- the public row points at the best public entry: highest public score, then the earlier, then the lower id;
- the private row points at the entry judged at the reveal: among the eligible entries the competitor
  marked final (or, when none, its FINAL_PICKS best public entries), the highest private score, same ties.
Both rows carry the competitor's count of eligible entries and their submission's params and FLOPs.
The progress points (table board_progress) are the eligible entries that scored above every earlier one
of their competitor (by created_at, then id).

Writers call refresh() (or touch() when only names or the reveal changed) after their change, in the same
transaction: it first bumps the challenge's board_versions row, which serialises the writers of one board
(a row lock on Postgres until commit, so the recomputation that follows sees every committed change),
then recomputes only the competitors the change touched, from their own entries.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, case, delete, func, insert, literal, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from podium.core.models import (
    BoardEntry,
    BoardProgress,
    BoardVersion,
    Challenge,
    Score,
    Submission,
    TeamMember,
    User,
    utcnow,
)

PUBLIC, PRIVATE = "public", "private"
USER, TEAM = "user", "team"
FINAL_PICKS = 2  # final picks per competitor; without any, this many best public entries are judged

Owner = tuple[str, int]  # (USER, user id) or (TEAM, team id)
WHOLE_BOARD_FROM = 64  # a change touching more competitors than this recomputes the whole board in one pass

_COLUMNS = ["challenge_id", "board", "owner_kind", "owner_id", "submission_id", "order_score", "public_score",
            "private_score", "created_at", "entries", "params", "flops_per_input"]


def owner_of(is_team: bool, team_id: int | None, user_id: int) -> Owner:
    """The competitor a submission counts for."""
    return (TEAM, team_id) if is_team and team_id is not None else (USER, user_id)


def owner_columns(is_team: bool):
    """SQL expressions of the competitor's (kind, id) of a Submission row."""
    if not is_team:
        return literal(USER), Submission.user_id
    kind = case((Submission.team_id.is_not(None), literal(TEAM)), else_=literal(USER))
    return kind, func.coalesce(Submission.team_id, Submission.user_id)


def owned_by(is_team: bool, owners: Iterable[Owner]):
    """Submissions that count for any of these competitors."""
    conds = []
    for kind, owner_id in owners:
        if kind == TEAM:
            conds.append(Submission.team_id == owner_id)
        elif is_team:
            conds.append(and_(Submission.team_id.is_(None), Submission.user_id == owner_id))
        else:
            conds.append(Submission.user_id == owner_id)
    return or_(*conds)


def _rows_of(owners: Iterable[Owner], table=BoardEntry):
    return or_(*(and_(table.owner_kind == kind, table.owner_id == owner_id) for kind, owner_id in owners))


def eligible(challenge_id: int):
    """Conditions on Submission and User of an eligible entry (literal status, so partial indexes apply)."""
    return (Submission.challenge_id == challenge_id, Submission.status == literal("scored", literal_execute=True),
            Submission.disqualified_reason.is_(None), User.disqualified_reason.is_(None))


def _selects(challenge_id: int, is_team: bool, owners: list[Owner] | None):
    """The two INSERT ... SELECTs' SELECTs: public rows and private rows of these competitors (all when None)."""
    kind, owner_id = owner_columns(is_team)
    per_owner = (kind, owner_id)
    query = (select(Submission.id.label("submission_id"), kind.label("owner_kind"), owner_id.label("owner_id"),
                    Score.public_score, Score.private_score, Submission.created_at, Submission.is_final,
                    Submission.params, Submission.flops_per_input,
                    func.row_number().over(partition_by=per_owner, order_by=(
                        Score.public_score.desc(), Submission.created_at, Submission.id)).label("rn"),
                    func.count().over(partition_by=per_owner).label("entries"),
                    func.max(case((Submission.is_final.is_(True), 1), else_=0)).over(partition_by=per_owner)
                    .label("has_final"))
             .join(Score, Score.submission_id == Submission.id).join(User, User.id == Submission.user_id)
             .where(*eligible(challenge_id)))
    if owners is not None:
        query = query.where(owned_by(is_team, owners))
    ranked = query.subquery("ranked")

    def row(board: str, src, score):
        return select(literal(challenge_id), literal(board), src.c.owner_kind, src.c.owner_id, src.c.submission_id,
                      -score, src.c.public_score, src.c.private_score, src.c.created_at, src.c.entries,
                      src.c.params, src.c.flops_per_input)

    public = row(PUBLIC, ranked, ranked.c.public_score).where(ranked.c.rn == 1)
    judged = (select(ranked, func.row_number().over(
        partition_by=(ranked.c.owner_kind, ranked.c.owner_id),
        order_by=(ranked.c.private_score.desc(), ranked.c.created_at, ranked.c.submission_id)).label("prn"))
        .where(or_(and_(ranked.c.has_final == 1, ranked.c.is_final.is_(True)),
                   and_(ranked.c.has_final == 0, ranked.c.rn <= FINAL_PICKS)))
        .subquery("judged"))
    private = row(PRIVATE, judged, judged.c.private_score).where(judged.c.prn == 1)
    return public, private


_PROGRESS_COLUMNS = ["challenge_id", "owner_kind", "owner_id", "submission_id", "created_at", "public_score"]


def progress_of(owners: Iterable[Owner]):
    """board_progress rows of these competitors."""
    return _rows_of(owners, BoardProgress)


def _progress_select(challenge_id: int, is_team: bool, owners: list[Owner] | None):
    """The INSERT ... SELECT's SELECT of these competitors' progress points (all competitors' when None)."""
    kind, owner_id = owner_columns(is_team)
    best_before = func.max(Score.public_score).over(partition_by=(kind, owner_id),
                                                    order_by=(Submission.created_at, Submission.id), rows=(None, -1))
    query = (select(kind.label("owner_kind"), owner_id.label("owner_id"), Submission.id.label("submission_id"),
                    Submission.created_at, Score.public_score, best_before.label("best_before"))
             .join(Score, Score.submission_id == Submission.id).join(User, User.id == Submission.user_id)
             .where(*eligible(challenge_id)))
    if owners is not None:
        query = query.where(owned_by(is_team, owners))
    history = query.subquery("history")
    return (select(literal(challenge_id), history.c.owner_kind, history.c.owner_id, history.c.submission_id,
                   history.c.created_at, history.c.public_score)
            .where(or_(history.c.best_before.is_(None), history.c.public_score > history.c.best_before)))


def touch(session: Session, challenge_id: int) -> None:
    """Mark the board changed (its pages' ETag moves) and hold its writers' lock until this transaction ends."""
    now = utcnow()
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = make(BoardVersion).values(challenge_id=challenge_id, version=1, changed_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["challenge_id"],
                                               set_={"version": BoardVersion.version + 1, "changed_at": now}))


def refresh(session: Session, challenge_id: int, owners: Iterable[Owner] | None = None) -> None:
    """Recompute these competitors' rows of a challenge (every competitor's when None), after a change to them."""
    owners = None if owners is None else sorted(set(owners))
    if owners == []:
        return
    if owners is not None and len(owners) > WHOLE_BOARD_FROM:
        owners = None
    touch(session, challenge_id)
    is_team = (session.scalar(select(Challenge.team_size).where(Challenge.id == challenge_id)) or 1) > 1
    for table in (BoardEntry, BoardProgress):
        gone = delete(table).where(table.challenge_id == challenge_id)
        if owners is not None:
            gone = gone.where(_rows_of(owners, table))
        session.execute(gone.execution_options(synchronize_session=False))
    for query in _selects(challenge_id, is_team, owners):
        session.execute(insert(BoardEntry).from_select(_COLUMNS, query))
    session.execute(insert(BoardProgress).from_select(_PROGRESS_COLUMNS, _progress_select(challenge_id, is_team,
                                                                                          owners)))


def owners_of_submissions(session: Session, condition) -> dict[int, set[Owner]]:
    """The competitors, by challenge, that the submissions matching `condition` count for."""
    out: dict[int, set[Owner]] = {}
    rows = session.execute(select(Submission.challenge_id, Challenge.team_size, Submission.team_id, Submission.user_id)
                           .join(Challenge, Challenge.id == Submission.challenge_id).where(condition).distinct())
    for challenge_id, team_size, team_id, user_id in rows:
        out.setdefault(challenge_id, set()).add(owner_of((team_size or 1) > 1, team_id, user_id))
    return out


def refresh_submissions(session: Session, condition) -> None:
    """Recompute the rows of every competitor the submissions matching `condition` count for."""
    for challenge_id, owners in sorted(owners_of_submissions(session, condition).items()):
        refresh(session, challenge_id, owners)


def refresh_submission(session: Session, submission_id: int) -> None:
    """Recompute the rows of the competitor one submission counts for (after its status, flags or score moved)."""
    refresh_submissions(session, Submission.id == submission_id)


def refresh_user(session: Session, user_id: int) -> None:
    """Recompute every row a user's uploads count for (after the user was disqualified or reinstated)."""
    refresh_submissions(session, Submission.user_id == user_id)


def touch_user(session: Session, user_id: int) -> None:
    """Mark changed every board that shows this user's name (as a competitor or a team's member)."""
    shown = set(session.scalars(select(Submission.challenge_id).where(Submission.user_id == user_id).distinct()))
    shown |= set(session.scalars(select(TeamMember.challenge_id).where(TeamMember.user_id == user_id)))
    for challenge_id in sorted(shown):
        touch(session, challenge_id)


def version(session: Session, challenge_id: int) -> tuple[int, object]:
    """(version, changed_at) of a challenge's board; (0, None) before its first change."""
    row = session.execute(select(BoardVersion.version, BoardVersion.changed_at)
                          .where(BoardVersion.challenge_id == challenge_id)).first()
    return (row.version, row.changed_at) if row else (0, None)
