"""Team endpoints of the REST API (/api/v1): create, join, read and leave a team; instructors list and move."""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from podium.core.models import Team, User
from podium.server import teams as ops
from podium.server.api import schemas as sch
from podium.server.api.auth import current_user, instructor_only
from podium.server.api.spec import INSTRUCTOR, spec
from podium.server.errors import ApiError
from podium.server.lookup import challenge_or_404
from podium.server.services import db_session

teams_api = Blueprint("teams_api", __name__, url_prefix="/api/v1")


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "send a JSON object")
    return data


@teams_api.post("/challenges/<slug>/teams")
@spec(body=sch.TeamNameIn, responses={201: sch.Team}, errors=(403, 409, 422))
def create_team(slug: str):
    """Create a team `{"name"}`; the caller becomes its first member; 201 with its join code."""
    user = current_user()
    team = ops.create_team(db_session(), challenge_or_404(db_session(), slug), user, str(_body().get("name", "")))
    db_session().commit()
    return jsonify(ops.team_json(team, user)), 201


@teams_api.post("/challenges/<slug>/teams/join")
@spec(body=sch.TeamJoinIn, responses={200: sch.Team}, errors=(403, 409))
def join_team(slug: str):
    """Join the team with this join code `{"code"}`; 409 when full, fixed, or the caller already has a team."""
    user = current_user()
    team = ops.join_team(db_session(), challenge_or_404(db_session(), slug), user, str(_body().get("code", "")))
    db_session().commit()
    return jsonify(ops.team_json(team, user))


@teams_api.get("/challenges/<slug>/team")
@spec(responses={200: sch.Team})
def my_team(slug: str):
    """The caller's team in this challenge, or 404."""
    user = current_user()
    challenge = challenge_or_404(db_session(), slug)
    team = ops.team_of(db_session(), challenge, user)
    if team is None:
        raise ApiError(404, "no_team", f"you are in no team of challenge {slug}")
    return jsonify(ops.team_json(team, user))


@teams_api.post("/challenges/<slug>/team/leave")
@spec(responses={200: sch.TeamLeft}, errors=(403, 409))
def leave_team(slug: str):
    """Leave your team while it has no scored submission (409 after that: an instructor moves students)."""
    user = current_user()
    team = ops.leave_team(db_session(), challenge_or_404(db_session(), slug), user)
    db_session().commit()
    return jsonify({"left": team.name})


@teams_api.get("/challenges/<slug>/teams")
@spec(auth=INSTRUCTOR, responses={200: list[sch.Team]})
@instructor_only
def list_teams(slug: str):
    """Every team with members and join codes (instructors)."""
    viewer = current_user()
    return jsonify([ops.team_json(t, viewer) for t in ops.teams(db_session(), challenge_or_404(db_session(), slug))])


@teams_api.post("/challenges/<slug>/teams/move")
@spec(auth=INSTRUCTOR, body=sch.TeamMoveIn, responses={200: sch.TeamMoved}, errors=(409,))
@instructor_only
def move_student(slug: str):
    """Move `{"username", "team"}` into the team with that id (null: out of any team), at any time (instructors)."""
    viewer = current_user()
    challenge = challenge_or_404(db_session(), slug)
    body = _body()
    student = db_session().scalar(select(User).where(User.username == str(body.get("username", ""))))
    if student is None:
        raise ApiError(404, "not_found", f"no user {body.get('username')!r}")
    target = None
    if body.get("team") is not None:
        if not isinstance(body["team"], int):
            raise ApiError(400, "bad_request", "team must be a team id or null")
        target = db_session().get(Team, body["team"])
        if target is None or target.challenge_id != challenge.id:
            raise ApiError(404, "not_found", f"no team {body['team']} in challenge {slug}")
    ops.move_student(db_session(), challenge, viewer, student, target)
    db_session().commit()
    team = ops.team_of(db_session(), challenge, student)
    return jsonify({"user": student.username, "team": ops.team_json(team, viewer) if team else None})

