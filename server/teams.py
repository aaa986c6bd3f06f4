"""Teams of a team challenge: create, join with a code, leave, be moved by an instructor; every change logged."""
from __future__ import annotations

import secrets

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from podium.core import board, states
from podium.core.models import Challenge, Submission, Team, TeamEvent, TeamMember, User
from podium.server.courses import ALIAS_RE
from podium.server.errors import ApiError
from podium.server.locks import lock_row

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 10


def _how_to(challenge: Challenge) -> str:
    return (f"create a team on the challenge page, or join one with the code a teammate shows there "
            f"(API: POST /api/v1/challenges/{challenge.slug}/teams {{\"name\"}} or "
            f"POST /api/v1/challenges/{challenge.slug}/teams/join {{\"code\"}})")


def require_team_challenge(challenge: Challenge) -> None:
    """409 for team actions on an individual challenge."""
    if not challenge.is_team:
        raise ApiError(409, "not_a_team_challenge", f"challenge {challenge.slug} is individual: there are no teams")


def no_team_error(challenge: Challenge) -> ApiError:
    """The 409 a student without a team gets when they try to submit to a team challenge."""
    return ApiError(409, "no_team", f"challenge {challenge.slug} is a team challenge (up to {challenge.team_size} "
                    f"students a team) and you are in no team: {_how_to(challenge)}")


def team_of(session: Session, challenge: Challenge, user: User | None) -> Team | None:
    """The user's team in this challenge, or None."""
    if user is None or not challenge.is_team:
        return None
    return session.scalar(select(Team).join(TeamMember, TeamMember.team_id == Team.id)
                          .where(TeamMember.challenge_id == challenge.id, TeamMember.user_id == user.id))


def is_member(session: Session, team_id: int, user: User) -> bool:
    """True when user holds a seat in the team now."""
    return session.scalar(select(exists().where(TeamMember.team_id == team_id, TeamMember.user_id == user.id))) or False


def has_scored(session: Session, team_id: int) -> bool:
    """A team with a scored submission is fixed: only an instructor may change its members."""
    return session.scalar(select(exists().where(Submission.team_id == team_id,
                                                Submission.status == states.SCORED))) or False


def member_count(session: Session, team_id: int) -> int:
    """How many seats of the team are taken."""
    return session.scalar(select(func.count()).select_from(TeamMember).where(TeamMember.team_id == team_id)) or 0


def public_name(user: User, viewer: User | None) -> str:
    """Instructors see usernames; everyone else a student's alias when they chose one."""
    return user.username if viewer is not None and viewer.is_instructor else user.alias or user.username


def team_json(team: Team, viewer: User | None) -> dict:
    """The API view of a team: the join code goes to its members and instructors only."""
    members = [public_name(m.user, viewer) for m in team.members]
    data = {"id": team.id, "name": team.name, "members": members}
    if viewer is not None and (viewer.is_instructor or any(m.user_id == viewer.id for m in team.members)):
        data["join_code"] = team.join_code
    return data


def _log(session: Session, challenge: Challenge, user: User, actor: User, action: str,
         from_team: Team | None = None, to_team: Team | None = None) -> None:
    session.add(TeamEvent(challenge_id=challenge.id, user_id=user.id, actor_id=actor.id, action=action,
                          from_team=from_team.name if from_team else None, to_team=to_team.name if to_team else None))


def _student_only(user: User) -> None:
    if user.is_instructor:
        raise ApiError(403, "forbidden", "instructors are in no team; move students between teams on the dashboard")


def check_name(session: Session, challenge: Challenge, name: str, user: User) -> str:
    """A team name passes the alias rules, is unique in the challenge and impersonates no other student."""
    name = (name or "").strip()
    if not ALIAS_RE.match(name):
        raise ApiError(422, "invalid_team_name", "a team name has 3-32 letters, digits, spaces, '.', '_' or '-'")
    key = name.casefold()
    if session.scalar(select(Team.id).where(Team.challenge_id == challenge.id, Team.name_key == key)):
        raise ApiError(409, "team_name_taken", f"a team named {name!r} already exists in this challenge")
    clash = session.scalar(select(User.id).where(User.id != user.id, or_(func.lower(User.alias) == name.lower(),
                                                                         func.lower(User.username) == name.lower())))
    if clash is not None:
        raise ApiError(409, "team_name_taken", "that name is a student's name or alias; pick another one")
    return name


def _flush_or_conflict(session: Session, challenge: Challenge) -> None:
    """Unique constraints decide races that the checks above lost: one team per student, one name per challenge."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "team_conflict", "you are already in a team of this challenge, or the name was just "
                       f"taken; reload and try again ({challenge.slug})")


def create_team(session: Session, challenge: Challenge, user: User, name: str) -> Team:
    """A new team with the caller as its first member and a fresh join code (the caller commits)."""
    require_team_challenge(challenge)
    _student_only(user)
    current = team_of(session, challenge, user)
    if current is not None:
        raise ApiError(409, "already_in_team", f"you are already in team {current.name!r}; leave it first")
    name = check_name(session, challenge, name, user)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    team = Team(challenge_id=challenge.id, name=name, name_key=name.casefold(), join_code=code)
    session.add(team)
    _flush_or_conflict(session, challenge)
    session.add(TeamMember(team_id=team.id, challenge_id=challenge.id, user_id=user.id))
    _log(session, challenge, user, user, "created", to_team=team)
    _flush_or_conflict(session, challenge)
    return team


def _seat(session: Session, challenge: Challenge, team: Team, user: User) -> None:
    """Take a seat under the team's lock: the count read here holds until commit, so a team never overfills."""
    lock_row(session, Team, team.id)
    if member_count(session, team.id) >= challenge.team_size:
        raise ApiError(409, "team_full", f"team {team.name!r} is full ({challenge.team_size} members)")
    session.add(TeamMember(team_id=team.id, challenge_id=challenge.id, user_id=user.id))


def join_team(session: Session, challenge: Challenge, user: User, code: str) -> Team:
    """Join the team whose join code this is; 409 when full, fixed, or the caller already has a team."""
    require_team_challenge(challenge)
    _student_only(user)
    code = (code or "").strip().upper()
    team = session.scalar(select(Team).where(Team.challenge_id == challenge.id, Team.join_code == code)) if code else None
    if team is None:
        raise ApiError(404, "not_found", "no team of this challenge has that join code; ask your teammate for it")
    current = team_of(session, challenge, user)
    if current is not None:
        raise ApiError(409, "already_in_team", f"you are already in team {current.name!r}; leave it first")
    if has_scored(session, team.id):
        raise ApiError(409, "team_fixed", f"team {team.name!r} already has a scored submission; only an "
                       "instructor can add members now")
    _seat(session, challenge, team, user)
    _log(session, challenge, user, user, "joined", to_team=team)
    _flush_or_conflict(session, challenge)
    board.touch(session, challenge.id)  # the team's members show on the board
    session.refresh(team)
    return team


def _drop_if_empty(session: Session, team: Team) -> None:
    # An empty team with no submission leaves no trace but its log lines; one with submissions keeps its row.
    session.flush()
    if member_count(session, team.id) == 0 and not session.scalar(select(exists().where(Submission.team_id == team.id))):
        session.expire(team, ["members"])  # seats were deleted in SQL: let the ORM see the empty team it deletes
        session.delete(team)


def leave_team(session: Session, challenge: Challenge, user: User) -> Team:
    """Leave your team, while it has no scored submission (after that only an instructor moves students)."""
    require_team_challenge(challenge)
    team = team_of(session, challenge, user)
    if team is None:
        raise ApiError(404, "no_team", "you are in no team of this challenge")
    lock_row(session, Team, team.id)
    if has_scored(session, team.id):
        raise ApiError(409, "team_fixed", f"team {team.name!r} has a scored submission: its members are fixed; "
                       "ask your instructor to move you")
    session.execute(TeamMember.__table__.delete().where(TeamMember.team_id == team.id, TeamMember.user_id == user.id))
    _log(session, challenge, user, user, "left", from_team=team)
    _drop_if_empty(session, team)
    session.flush()
    board.touch(session, challenge.id)
    return team


def move_student(session: Session, challenge: Challenge, actor: User, student: User, target: Team | None) -> None:
    """An instructor moves a student into another team (or out of any, target None), at any time; logged."""
    require_team_challenge(challenge)
    if not actor.is_instructor:
        raise ApiError(403, "forbidden", "only instructors move students between teams")
    if student.is_instructor:
        raise ApiError(422, "not_a_student", f"{student.username} is an instructor")
    if target is not None and target.challenge_id != challenge.id:
        raise ApiError(404, "not_found", "no such team in this challenge")
    current = team_of(session, challenge, student)
    if (current.id if current else None) == (target.id if target else None):
        return  # already there: nothing to change, nothing to log
    if target is not None:
        lock_row(session, Team, target.id)
    if current is not None:
        session.execute(TeamMember.__table__.delete().where(TeamMember.team_id == current.id,
                                                            TeamMember.user_id == student.id))
    if target is not None:
        _seat(session, challenge, target, student)
    _log(session, challenge, student, actor, "moved", from_team=current, to_team=target)
    _flush_or_conflict(session, challenge)
    if current is not None:
        _drop_if_empty(session, current)
    session.flush()
    board.touch(session, challenge.id)


def teams(session: Session, challenge: Challenge) -> list[Team]:
    """Every team of the challenge with its members, by name."""
    return list(session.scalars(select(Team).options(selectinload(Team.members).selectinload(TeamMember.user))
                                .where(Team.challenge_id == challenge.id).order_by(Team.name_key)))


def events(session: Session, challenge: Challenge, limit: int = 200) -> list[TeamEvent]:
    """The newest team changes of the challenge."""
    return list(session.scalars(select(TeamEvent).where(TeamEvent.challenge_id == challenge.id)
                                .order_by(TeamEvent.id.desc()).limit(limit)))


def without_team(session: Session, challenge: Challenge) -> list[User]:
    """Students of the challenge's course who are in no team yet (none when the challenge has no course)."""
    if challenge.course_id is None:
        return []
    seated = select(TeamMember.user_id).where(TeamMember.challenge_id == challenge.id)
    return list(session.scalars(select(User).where(User.course_id == challenge.course_id, User.role == "student",
                                                   User.id.not_in(seated)).order_by(User.username)))
