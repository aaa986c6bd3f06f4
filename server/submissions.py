"""Submission rules: when a student may submit, what they may see, and how a row is shown."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, object_session, selectinload

from podium.core import states
from podium.core.models import Challenge, Submission, Team, User, utcnow
from podium.server.errors import ApiError
from podium.server.locks import lock_row
from podium.server.teams import is_member, no_team_error, team_of

IDEMPOTENCY_WINDOW = timedelta(days=1)
LIST_CHUNK = 1000  # submissions read per statement (and per session) when a whole challenge's list streams


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, or None."""
    return value.isoformat() if value else None


def check_window(challenge: Challenge, now: datetime | None = None) -> None:
    """Refuse uploads before opens_at (403) or after the deadline (403)."""
    now = now or utcnow()
    if challenge.opens_at and now < challenge.opens_at:
        raise ApiError(403, "not_open", f"challenge {challenge.slug} opens at {iso(challenge.opens_at)}",
                       opens_at=iso(challenge.opens_at))
    if challenge.deadline and now >= challenge.deadline:
        raise ApiError(403, "closed", f"challenge {challenge.slug} closed at {iso(challenge.deadline)}",
                       deadline=iso(challenge.deadline))


def counts_against_limit():
    """SQL condition: submissions that use up the daily allowance (platform failures do not)."""
    return or_(Submission.failure_kind.is_(None), Submission.failure_kind == states.FAILURE_MODEL)


@dataclass(frozen=True)
class Competitor:
    """Whom a submission counts for: the uploader's team in a team challenge, else the uploader alone."""

    user_id: int
    team: Team | None = None

    @property
    def team_id(self) -> int | None:
        return self.team.id if self.team is not None else None

    def owns(self):
        """SQL condition on Submission: this competitor's submissions."""
        if self.team is not None:
            return Submission.team_id == self.team.id
        return and_(Submission.user_id == self.user_id, Submission.team_id.is_(None))

    def lock(self, session: Session) -> None:
        """Serialise this competitor's submissions until the transaction ends (see podium.server.locks)."""
        if self.team is not None:
            lock_row(session, Team, self.team.id)
        else:
            lock_row(session, User, self.user_id)


def find_competitor(session: Session, user: User, challenge: Challenge) -> Competitor | None:
    """The caller's competitor in this challenge; None for a student without a team in a team challenge.

    Instructors (and the demo baseline, an instructor account) submit as themselves in every challenge.
    """
    if not challenge.is_team:
        return Competitor(user.id)
    team = team_of(session, challenge, user)
    if team is None:
        return Competitor(user.id) if user.is_instructor else None
    return Competitor(user.id, team)


def competitor_for(session: Session, user: User, challenge: Challenge) -> Competitor:
    """Like find_competitor, but a student without a team gets a 409 saying how to create or join one."""
    found = find_competitor(session, user, challenge)
    if found is None:
        raise no_team_error(challenge)
    return found


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day the limit counts: its start and when it resets."""
    start = datetime.combine(now.date(), time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def usage(session: Session, competitor: Competitor, challenge: Challenge, now: datetime) -> tuple[int, int]:
    """(uploads counted today, submissions waiting or running) of one competitor."""
    day_start, _ = day_bounds(now)
    base = select(func.count()).select_from(Submission).where(Submission.challenge_id == challenge.id,
                                                              competitor.owns())
    used = session.scalar(base.where(Submission.created_at >= day_start, counts_against_limit())) or 0
    pending = session.scalar(base.where(Submission.status.in_([states.QUEUED, states.RUNNING]))) or 0
    return used, pending


def check_limits(session: Session, user: User, challenge: Challenge, now: datetime | None = None,
                 competitor: Competitor | None = None) -> Competitor:
    """Daily limit (429 with the reset time) and the cap on pending submissions (429), per student or team.

    Returns the competitor the counts were made for. Alone this is only a quick refusal: the rule holds
    because new_submission runs it again under the competitor's lock, in the transaction that inserts.
    """
    competitor = competitor or competitor_for(session, user, challenge)
    if user.is_instructor:
        return competitor
    now = now or utcnow()
    used, pending = usage(session, competitor, challenge, now)
    _, resets_at = day_bounds(now)
    whose = "your team's" if competitor.team is not None else "your"
    if challenge.daily_limit and used >= challenge.daily_limit:
        raise ApiError(429, "daily_limit", f"daily limit of {challenge.daily_limit} submissions reached "
                       f"({whose} uploads today); it resets at {iso(resets_at)}", resets_at=iso(resets_at))
    if challenge.max_queued and pending >= challenge.max_queued:
        raise ApiError(429, "too_many_pending", f"{pending} of {whose} submissions are waiting to be graded; "
                       "wait until one finishes")
    return competitor


def private_visible(challenge: Challenge, viewer: User | None) -> bool:
    """Private scores show to instructors always, to everyone after the reveal."""
    return bool(viewer and viewer.is_instructor) or challenge.revealed_at is not None


def can_view(submission: Submission, viewer: User | None) -> bool:
    """A submission is visible to its owner, to the current members of its team, and to instructors."""
    if viewer is None:
        return False
    if viewer.is_instructor or viewer.id == submission.user_id:
        return True
    return submission.team_id is not None and is_member(object_session(submission), submission.team_id, viewer)


def submission_json(sub: Submission, viewer: User | None) -> dict:
    """The API view of a submission (GET /submissions/<id>)."""
    score = sub.score if sub.status == states.SCORED else None
    data = {
        "id": sub.id,
        "challenge": sub.challenge.slug,
        "user": sub.user.username,
        "status": sub.status,
        "public_score": score.public_score if score else None,
        "error": sub.error,
        "created_at": iso(sub.created_at),
        "started_at": iso(sub.started_at),
        "finished_at": iso(sub.finished_at),
        "model_sha256": sub.model_sha256,
        "is_final": sub.is_final,
        "device": score.device if score else None,
        # Measured by the sandbox, also on a model that then failed (over a budget, say).
        **{k: getattr(sub, k) for k in states.MEASURED},
    }
    if sub.challenge.is_team:
        data["team"] = sub.team.name if sub.team is not None else None
    if private_visible(sub.challenge, viewer):
        data["private_score"] = score.private_score if score else None
    if viewer is not None and viewer.is_instructor:
        data.update(attempt=sub.attempt, worker=sub.worker, failure_kind=sub.failure_kind,
                    disqualified_reason=sub.disqualified_reason,
                    timings=score.timings if score else None)
    return data


def every_submission_json(db, challenge_id: int, viewer_id: int) -> Iterator[str]:
    """Every submission of a challenge as one JSON list, newest first, for an instructor: streamed.

    Read LIST_CHUNK at a time with their scores, uploaders and teams, each chunk in a session of its own,
    so the list of a challenge of any size takes the same memory and a few statements per chunk.
    """
    yield "["
    before, first = None, True
    while True:
        with db.session() as s:
            viewer = s.get(User, viewer_id)
            query = (select(Submission).options(selectinload(Submission.score), selectinload(Submission.user),
                                                selectinload(Submission.team), selectinload(Submission.challenge))
                     .where(Submission.challenge_id == challenge_id))
            if before is not None:
                query = query.where(Submission.id < before)
            chunk = s.scalars(query.order_by(Submission.id.desc()).limit(LIST_CHUNK)).all()
            for sub in chunk:
                yield ("" if first else ",") + json.dumps(submission_json(sub, viewer))
                first = False
        if len(chunk) < LIST_CHUNK:
            break
        before = chunk[-1].id
    yield "]"


def prior_submission(session: Session, user: User, challenge: Challenge, key: str | None,
                     now: datetime | None = None) -> Submission | None:
    """The caller's submission made with this Idempotency-Key within the last day (409 if it was for another challenge)."""
    if not key:
        return None
    since = (now or utcnow()) - IDEMPOTENCY_WINDOW
    prior = session.scalar(select(Submission).where(Submission.user_id == user.id, Submission.idempotency_key == key,
                                                    Submission.created_at >= since).order_by(Submission.id).limit(1))
    if prior is not None and prior.challenge_id != challenge.id:
        raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was already used for an upload to "
                       f"challenge {prior.challenge.slug}; send a new key for a new upload")
    return prior


def new_submission(session: Session, user: User, challenge: Challenge, sha: str, size: int, filename: str,
                   idempotency_key: str | None = None) -> tuple[Submission, bool]:
    """Insert a queued submission row once the limits hold under the competitor's lock (the caller commits, then enqueues).

    Returns (row, created): a retry whose Idempotency-Key has a row already gets that row and False.
    The lock is taken before this transaction's counts, so of two uploads racing for the last allowed
    slot, the second one counts the first one's row and gets the 429; of two with the same key, the
    second one finds the first one's row.
    """
    competitor = competitor_for(session, user, challenge)
    competitor.lock(session)
    prior = prior_submission(session, user, challenge, idempotency_key)
    if prior is not None:
        return prior, False
    competitor = competitor_for(session, user, challenge)  # re-read under the lock: a move may have just landed
    check_limits(session, user, challenge, competitor=competitor)
    sub = Submission(challenge_id=challenge.id, user_id=user.id, team_id=competitor.team_id, status=states.QUEUED,
                     model_sha256=sha, model_size=size, filename=filename, idempotency_key=idempotency_key)
    session.add(sub)
    session.flush()
    return sub, True
