"""The submission state machine: the one place where a submission's status may change."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from podium.core import board
from podium.core.models import Submission, utcnow

QUEUED, RUNNING, SCORED, FAILED = "queued", "running", "scored", "failed"
STATUSES = (QUEUED, RUNNING, SCORED, FAILED)
FINISHED = (SCORED, FAILED)

# Allowed moves. running -> running is a take-over of a row whose worker's lease ran out;
# running -> queued hands a row back (worker lost, shutdown, reaper); scored/failed -> queued
# is an instructor's re-score and always starts a new attempt, so late messages of the old one
# can never touch the row again.
ALLOWED: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, FAILED}),
    RUNNING: frozenset({RUNNING, SCORED, FAILED, QUEUED}),
    SCORED: frozenset({QUEUED}),
    FAILED: frozenset({QUEUED}),
}

# Why a submission failed; only "model" failures count against a student's daily limit. A model over a
# challenge's cost budget never got a score, so "budget" does not count either.
FAILURE_MODEL, FAILURE_INFRA, FAILURE_CANCELLED, FAILURE_BUDGET = "model", "infra", "cancelled", "budget"
INFRA_ERROR = "grading infrastructure error"


def allowed(current: str, new: str) -> bool:
    """True when the table allows moving from current to new."""
    return new in ALLOWED.get(current, frozenset())


def sources_of(new: str) -> list[str]:
    """Every status from which `new` may be reached."""
    return [s for s in STATUSES if allowed(s, new)]


def transition(session: Session, submission_id: int, new: str, *, expected_attempt: int | None = None,
               from_statuses: list[str] | None = None, extra_where=(), refresh_board: bool = True, **fields) -> bool:
    """Atomically move one submission to `new` if the table allows it; returns whether it moved.

    The check and the write are one UPDATE ... WHERE status IN (...), so two workers racing
    on the same row cannot both win, and a stale attempt cannot touch a newer one. A move into or
    out of scored updates the leaderboard's entries in the same transaction (podium.core.board),
    unless the caller refreshes the board itself after many moves (refresh_board=False).
    """
    if new not in STATUSES:
        raise ValueError(f"unknown status {new!r}")
    sources = sources_of(new)
    if from_statuses is not None:
        bad = [s for s in from_statuses if s not in sources]
        if bad:
            raise ValueError(f"transition {bad} -> {new} is not allowed")
        sources = list(from_statuses)
    now = utcnow()
    values = {"status": new, **fields}
    if new == RUNNING:
        values.setdefault("started_at", now)
    elif new in FINISHED:
        values.setdefault("finished_at", now)
        values.setdefault("lease_expires_at", None)
    elif new == QUEUED:
        values.update(started_at=None, finished_at=None, lease_expires_at=None, worker=None)
    stmt = update(Submission).where(Submission.id == submission_id, Submission.status.in_(sources), *extra_where)
    if expected_attempt is not None:
        stmt = stmt.where(Submission.attempt == expected_attempt)
    result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    moved = result.rowcount == 1
    if moved and refresh_board and (new == SCORED or SCORED in sources):
        board.refresh_submission(session, submission_id)
    return moved


def claim(session: Session, submission_id: int, attempt: int, worker: str, lease_s: float) -> bool:
    """Take a queued row (or a running one whose lease expired) for scoring by `worker`."""
    now = utcnow()
    expired = or_(Submission.status == QUEUED, Submission.lease_expires_at < now,
                  Submission.lease_expires_at.is_(None))
    return transition(session, submission_id, RUNNING, expected_attempt=attempt, from_statuses=[QUEUED, RUNNING],
                      extra_where=(expired,), started_at=now, worker=worker,
                      lease_expires_at=now + timedelta(seconds=lease_s))


def renew_lease(session: Session, submission_id: int, attempt: int, lease_s: float) -> bool:
    """Extend the lease of a row this worker is still running."""
    stmt = (update(Submission)
            .where(Submission.id == submission_id, Submission.attempt == attempt, Submission.status == RUNNING)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False))
    return session.execute(stmt).rowcount == 1


# What the sandbox measured, written with the result in the same move.
MEASURED = ("format", "params", "flops_per_input", "inference_ms", "peak_memory_mb")


def _measured(values: dict) -> dict:
    unknown = set(values) - set(MEASURED)
    if unknown:
        raise ValueError(f"not a measured column: {sorted(unknown)}")
    return values


def finish_scored(session: Session, submission_id: int, attempt: int, **measured) -> bool:
    """running -> scored for this attempt, with what the sandbox measured (MEASURED columns)."""
    return transition(session, submission_id, SCORED, expected_attempt=attempt, from_statuses=[RUNNING], error=None,
                      failure_kind=None, **_measured(measured))


def fail(session: Session, submission_id: int, reason: str, *, kind: str = FAILURE_MODEL,
         attempt: int | None = None, **measured) -> bool:
    """queued|running -> failed with a reason a student can act on (and what the sandbox measured, if it ran)."""
    return transition(session, submission_id, FAILED, expected_attempt=attempt, from_statuses=[QUEUED, RUNNING],
                      error=reason, failure_kind=kind, **_measured(measured))


def requeue(session: Session, submission_id: int, *, attempt: int | None = None, count_retry: bool = True) -> bool:
    """Hand a running row back to the queue as a new attempt (worker lost, reaper, shutdown)."""
    fields: dict = {"attempt": Submission.attempt + 1}
    if count_retry:
        fields["infra_retries"] = Submission.infra_retries + 1
    # Only running rows: the table has no queued -> queued move (a queued row is re-published, not re-attempted).
    # enqueued_at is set in the same move: whoever re-queues publishes too (enqueue() clears it if it cannot),
    # so a reaper reading the row meanwhile does not take it for never published and send it again.
    return transition(session, submission_id, QUEUED, expected_attempt=attempt, from_statuses=[RUNNING],
                      enqueued_at=utcnow(), **fields)


def reopen(session: Session, submission_id: int, *, refresh_board: bool = True) -> bool:
    """Instructor re-score: scored|failed -> queued as a new attempt (refresh_board: see transition)."""
    return transition(session, submission_id, QUEUED, from_statuses=[SCORED, FAILED], enqueued_at=utcnow(),
                      refresh_board=refresh_board,
                      error=None, failure_kind=None, infra_retries=0, **{"attempt": Submission.attempt + 1})
