"""Grade passback from the web side: final scores at the reveal, the dashboard's status, "send again"."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core.lti.models import FAILED, PENDING, LtiLaunchLink, LtiPassback, LtiResourceLink
from podium.core.lti.passback import STUDENT, enqueue, graded_users, queue_best_public, queue_score
from podium.core.models import Challenge, Submission, TeamMember, User
from podium.server import leaderboard


def send_final_scores(session: Session, celery_app, challenge: Challenge) -> int:
    """At the reveal: queue every LTI student's final (private) score, commit, then publish; returns how many."""
    if challenge.revealed_at is None:
        return 0
    ids = _queue_current(session, challenge, list(leaderboard.final_entries(session, challenge)))
    session.commit()
    return enqueue(celery_app, ids)


def _queue_current(session: Session, challenge: Challenge, user_ids: list[int]) -> list[int]:
    """Queue each user's current grade: the final score after the reveal, the best public score before."""
    if challenge.revealed_at is None:
        return [i for uid in user_ids for i in queue_best_public(session, uid, challenge.id)]
    finals = leaderboard.final_entries(session, challenge)
    return [i for uid in user_ids if uid in finals
            for i in queue_score(session, uid, challenge.id, finals[uid].private_score, final=True,
                                 at=challenge.revealed_at)]


def after_submission_disqualified(session: Session, celery_app, sub: Submission) -> int:
    """A submission was disqualified or reinstated (committed): send the grades it moved; returns how many."""
    ids = _queue_current(session, sub.challenge, graded_users(session, sub))
    session.commit()
    return enqueue(celery_app, ids)


def after_user_disqualified(session: Session, celery_app, user: User) -> int:
    """A student was disqualified or reinstated (committed): send the grades that moved, in every LTI challenge."""
    challenge_ids = session.scalars(select(LtiResourceLink.challenge_id).join(
        LtiLaunchLink, LtiLaunchLink.resource_link_pk == LtiResourceLink.id).where(
        LtiLaunchLink.user_id == user.id).distinct())
    ids: list[int] = []
    for challenge_id in list(challenge_ids):
        team = select(TeamMember.team_id).where(TeamMember.challenge_id == challenge_id,
                                                TeamMember.user_id == user.id).scalar_subquery()
        mates = set(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team)))
        ids += _queue_current(session, session.get(Challenge, challenge_id), sorted(mates | {user.id}))
    session.commit()
    return enqueue(celery_app, ids)


@dataclass
class PassbackRow:
    """One student's placement of a challenge as the dashboard shows it."""

    link_id: int
    username: str
    display_name: str
    placement: str
    passback: LtiPassback | None


def status(session: Session, challenge: Challenge) -> list[PassbackRow]:
    """Passback state per LTI student of the challenge (never sent, pending, sent, failed with the last error)."""
    rows = session.execute(
        select(LtiLaunchLink, User, LtiResourceLink, LtiPassback)
        .join(User, User.id == LtiLaunchLink.user_id)
        .join(LtiResourceLink, LtiResourceLink.id == LtiLaunchLink.resource_link_pk)
        .outerjoin(LtiPassback, LtiPassback.launch_link_id == LtiLaunchLink.id)
        .where(LtiResourceLink.challenge_id == challenge.id, LtiLaunchLink.role == STUDENT)
        .order_by(User.username)).all()
    return [PassbackRow(link.id, user.username, user.display_name, rlink.context_title or rlink.title or
                        rlink.resource_link_id, pb) for link, user, rlink, pb in rows]


def send_again(session: Session, celery_app, challenge: Challenge, link_id: int) -> bool:
    """Queue the student's current score again (final after the reveal) and publish it; False if none to send."""
    link = session.get(LtiLaunchLink, link_id)
    if link is None or link.resource_link.challenge_id != challenge.id:
        return False
    row = session.scalar(select(LtiPassback).where(LtiPassback.launch_link_id == link.id))
    if row is not None and row.status == FAILED:
        row.status = PENDING
        ids = [row.id]
    elif challenge.revealed_at is not None:
        entry = leaderboard.final_entries(session, challenge).get(link.user_id)
        ids = queue_score(session, link.user_id, challenge.id, entry.private_score, final=True,
                          at=challenge.revealed_at) if entry else []
    else:
        ids = queue_best_public(session, link.user_id, challenge.id)
        if not ids and row is not None:
            row.status, ids = PENDING, [row.id]
    session.commit()
    return enqueue(celery_app, ids) > 0
