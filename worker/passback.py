"""Grade passback delivery: one attempt to send a queued score to the LMS, with the outcome recorded on the row."""
from __future__ import annotations

import logging
import os
import random
from datetime import UTC, timedelta

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.core.lti.models import FAILED, PENDING, SENT, LtiPassback
from podium.core.lti.passback import enqueue, graded_users, queue_best_public
from podium.core.lti.services import ServiceError, ensure_line_item, post_score
from podium.core.models import Submission, utcnow

log = logging.getLogger(__name__)

MAX_RETRIES = 12
BACKOFF_CAP_S = 1800.0  # under Redis's visibility timeout, so a waiting retry is not delivered twice
LOST_AFTER_S = 600.0    # a pending row untouched this long lost its task (broker restarted): publish it again


def deliver(session: Session, passback_id: int) -> bool:
    """One delivery attempt; True when sent (or nothing is left to send), False to try again later."""
    row = session.get(LtiPassback, passback_id)
    if row is None or row.status == SENT:
        return True
    link = row.launch_link
    rlink = link.resource_link
    challenge = rlink.challenge
    row.attempts += 1
    row.last_attempt_at = utcnow()
    try:
        lineitem = ensure_line_item(session, rlink, label=challenge.title or challenge.slug,
                                    tag=f"podium:{challenge.slug}")
        if lineitem is None:
            raise ServiceError("the launch carried no line item and the platform allows none to be created")
        post_score(session, rlink.platform, lineitem, link.sub, row.score, final=row.final,
                   timestamp=row.score_at.astimezone(UTC).isoformat(timespec="milliseconds"))
    except (ServiceError, requests.RequestException, ValueError) as exc:  # ValueError: a body that is not JSON
        row.status, row.last_error = FAILED, str(exc)[:1000]
        session.commit()
        log.warning("LTI passback %s (user %s, %s) failed: %s", row.id, link.user_id, challenge.slug, row.last_error)
        return False
    row.status, row.last_error, row.sent_at = SENT, None, utcnow()
    session.commit()
    return True


def backoff(retry: int, env=os.environ) -> float:
    """Seconds before retry number `retry` (1-based): PODIUM_LTI_RETRY_S (30 s) doubling up to 30 min, jittered."""
    base = float(env.get("PODIUM_LTI_RETRY_S", "30"))
    return min(BACKOFF_CAP_S, base * 2 ** (retry - 1)) * random.uniform(0.8, 1.0)


def after_scored(db, celery_app, submission_id: int) -> int:
    """After a score is committed: queue and publish passback where a best public score changed (each member's, in a team).

    Never raises: the score is already saved, and an LMS (or this bookkeeping) must not fail grading.
    """
    try:
        with db.session() as s:
            sub = s.get(Submission, submission_id)
            if sub is None:
                return 0
            ids = [i for uid in graded_users(s, sub) for i in queue_best_public(s, uid, sub.challenge_id)]
            s.commit()
        return enqueue(celery_app, ids) if ids and celery_app is not None else 0
    except Exception as exc:
        log.error("LTI passback bookkeeping for submission %s failed: %s", submission_id, exc)
        return 0


def resend_lost(db, celery_app, now=None, lost_after_s: float = LOST_AFTER_S) -> int:
    """Publish again the pending rows no task has touched for `lost_after_s`; returns how many.

    A duplicate task is harmless: delivery skips a row already sent, and AGS keeps the latest score.
    """
    now = now or utcnow()
    with db.session() as s:
        ids = list(s.scalars(select(LtiPassback.id).where(
            LtiPassback.status == PENDING,
            func.coalesce(LtiPassback.last_attempt_at, LtiPassback.score_at) < now - timedelta(seconds=lost_after_s))))
    if ids:
        log.warning("LTI passback: publishing %d pending row(s) again (their task was lost)", len(ids))
    return enqueue(celery_app, ids) if ids else 0
