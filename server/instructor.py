"""Instructor actions on a challenge: the dashboard, re-scoring with a report, disqualifying, revealing, deadlines."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from podium.core import board, states
from podium.core.models import Challenge, Rescore, Score, Submission, Team, User, utcnow
from podium.core.queueing import enqueue, queue_for
from podium.server import fields
from podium.server.teams import teams as all_teams

DASHBOARD_ROWS = 100
SHARED_SCAN = 5000  # uploads read to name who else uploaded a page's model files


@dataclass
class DashboardRow:
    """One submission as the instructor's dashboard shows it."""

    sub: Submission
    shared_with: list[str]  # other students who uploaded the identical model file


@dataclass
class DashboardPage:
    """One page of the dashboard, newest first; older: the `before` of the next page (None on the last)."""

    rows: list[DashboardRow]
    older: int | None


def dashboard(session: Session, challenge: Challenge, username: str | None = None, status: str | None = None,
              before: int | None = None, limit: int = DASHBOARD_ROWS) -> DashboardPage:
    """A page of a challenge's submissions older than `before`, newest first (one student's, or one status's, when
    given), flagging identical models uploaded by different students anywhere in the challenge.

    Pages walk the (challenge, id) index from a known id, so each costs the same however many came before.
    """
    if status is not None and status not in states.STATUSES:
        raise ValueError(f"unknown status {status!r}")
    query = (select(Submission).options(selectinload(Submission.score), selectinload(Submission.user))
             .where(Submission.challenge_id == challenge.id).order_by(Submission.id.desc()).limit(limit + 1))
    if username:
        query = query.join(User, User.id == Submission.user_id).where(User.username == username)
    if status:
        query = query.where(Submission.status == status)
    if before is not None:
        query = query.where(Submission.id < before)
    subs = list(session.scalars(query))
    older = subs[limit - 1].id if len(subs) > limit else None
    subs = subs[:limit]
    owners: dict[str, set[str]] = {}
    if subs:
        # Bounded: a file uploaded thousands of times (everyone's copy of the starter) costs SHARED_SCAN rows.
        uploads = (select(Submission.model_sha256, Submission.user_id)
                   .where(Submission.challenge_id == challenge.id,
                          Submission.model_sha256.in_({s.model_sha256 for s in subs})).limit(SHARED_SCAN)
                   .subquery("uploads"))
        pairs = session.execute(select(uploads.c.model_sha256, User.username)
                                .join(User, User.id == uploads.c.user_id).distinct())
        for sha, name in pairs:
            owners.setdefault(sha, set()).add(name)
    return DashboardPage([DashboardRow(s, sorted(owners.get(s.model_sha256, set()) - {s.user.username}))
                          for s in subs], older)


@dataclass
class TeamRow:
    """One team as the instructor's dashboard shows it: members, submissions, best public score."""

    team: Team
    submissions: int
    scored: int
    best_public: float | None

    @property
    def fixed(self) -> bool:
        """Members may no longer leave by themselves (only an instructor moves them)."""
        return self.scored > 0


def team_overview(session: Session, challenge: Challenge) -> list[TeamRow]:
    """Every team of a team challenge with its members and submission counts, by name (two statements)."""
    stats = {r.team_id: r for r in session.execute(
        select(Submission.team_id, func.count().label("n"),
               func.count(Score.id).label("scored"), func.max(Score.public_score).label("best"))
        .outerjoin(Score, (Score.submission_id == Submission.id) & (Submission.status == states.SCORED))
        .where(Submission.challenge_id == challenge.id, Submission.team_id.is_not(None))
        .group_by(Submission.team_id))}
    rows = []
    for team in all_teams(session, challenge):
        r = stats.get(team.id)
        rows.append(TeamRow(team, r.n if r else 0, r.scored if r else 0, r.best if r else None))
    return rows


def _snapshot(sub: Submission) -> dict:
    score = sub.score if sub.status == states.SCORED else None
    return {"id": sub.id, "status": sub.status, "public_score": score.public_score if score else None,
            "private_score": score.private_score if score else None}


def reopen_finished(session: Session, challenge: Challenge, submission_ids: list[int] | None = None) -> tuple[list, list]:
    """Re-open finished submissions (these, or all of the challenge) and update the board once for all of them.

    Returns (their scores before, the re-opened ids); nothing is committed.
    """
    query = select(Submission).options(selectinload(Submission.score)).where(
        Submission.challenge_id == challenge.id, Submission.status.in_(states.FINISHED))
    if submission_ids is not None:
        query = query.where(Submission.id.in_(submission_ids))
    subs = list(session.scalars(query.order_by(Submission.id)))
    before, reopened = [], []
    for sub in subs:
        snap = _snapshot(sub)
        if states.reopen(session, sub.id, refresh_board=False):
            before.append(snap)
            reopened.append(sub.id)
    # One recomputation for the whole request: per re-opened row it would cost a pass per row.
    if submission_ids is None:
        board.refresh(session, challenge.id)
    elif reopened:
        board.refresh_submissions(session, Submission.id.in_(reopened))
    return before, reopened


def rescore(session: Session, celery_app, challenge: Challenge, requester: User | None,
            submission_ids: list[int] | None = None) -> Rescore:
    """Re-open finished submissions (one, some, or all of the challenge), remember their scores, then enqueue them."""
    before, reopened = reopen_finished(session, challenge, submission_ids)
    run = Rescore(challenge_id=challenge.id, requested_by=requester.id if requester else None, before=before)
    session.add(run)
    session.commit()
    attempts = dict(session.execute(select(Submission.id, Submission.attempt).where(Submission.id.in_(reopened))).all())
    for sub_id in reopened:
        enqueue(celery_app, session, sub_id, attempts[sub_id], queue_for(challenge))
    return run


@dataclass
class Change:
    """One re-scored submission: before and now."""

    id: int
    user: str
    old_status: str
    old_public: float | None
    old_private: float | None
    status: str
    public: float | None
    private: float | None

    @property
    def pending(self) -> bool:
        return self.status in (states.QUEUED, states.RUNNING)

    @property
    def changed(self) -> bool:
        return (self.old_status, self.old_public, self.old_private) != (self.status, self.public, self.private)


def rescore_report(session: Session, run: Rescore) -> list[Change]:
    """What a re-score changed, submission by submission (pending rows show as such)."""
    ids = [b["id"] for b in run.before]
    subs = {s.id: s for s in session.scalars(select(Submission).options(
        selectinload(Submission.score), selectinload(Submission.user)).where(Submission.id.in_(ids)))}
    changes = []
    for b in run.before:
        sub = subs.get(b["id"])
        if sub is None:
            continue
        now = _snapshot(sub)
        changes.append(Change(sub.id, sub.user.username, b["status"], b["public_score"], b["private_score"],
                              now["status"], now["public_score"], now["private_score"]))
    return changes


def disqualify_submission(session: Session, sub: Submission, reason: str | None) -> None:
    """Exclude one submission from the leaderboard with a reason (None or empty: reinstate it)."""
    sub.disqualified_reason = fields.text(reason, "reason", fields.REASON, multiline=True) or None
    session.flush()
    board.refresh_submission(session, sub.id)


def disqualify_user(session: Session, user: User, reason: str | None) -> None:
    """Exclude a student from every leaderboard with a reason (None or empty: reinstate them)."""
    if user.is_instructor:
        raise ValueError("instructors cannot be disqualified")
    user.disqualified_reason = fields.text(reason, "reason", fields.REASON, multiline=True) or None
    session.flush()
    board.refresh_user(session, user.id)


def reveal(session: Session, challenge: Challenge, revealed: bool = True) -> None:
    """Show (or hide again) the private leaderboard to everyone."""
    challenge.revealed_at = (challenge.revealed_at or utcnow()) if revealed else None
    session.flush()
    board.touch(session, challenge.id)


def set_window(session: Session, challenge: Challenge, opens_at: datetime | None, deadline: datetime | None) -> None:
    """Set when a challenge opens and closes (aware datetimes; None leaves that side open)."""
    for value in (opens_at, deadline):
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a time zone")
        try:
            if value is not None:
                value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is past the last time Podium can store")
    if opens_at and deadline and deadline <= opens_at:
        raise ValueError("the deadline must come after the opening time")
    challenge.opens_at, challenge.deadline = opens_at, deadline
    session.flush()
    board.touch(session, challenge.id)  # the board's page shows the deadline


def cancel(session: Session, sub: Submission, by: User) -> bool:
    """Stop a queued or running submission (its owner or an instructor); it ends failed and is not counted."""
    who = "the instructor" if by.is_instructor and by.id != sub.user_id else "you"
    return states.fail(session, sub.id, f"cancelled by {who}", kind=states.FAILURE_CANCELLED)
