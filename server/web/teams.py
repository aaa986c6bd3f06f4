"""Team forms on the challenge page: create a team, join one with its code, leave it."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from podium.server import teams as ops
from podium.server.errors import ApiError
from podium.server.lookup import challenge_or_404
from podium.server.services import db_session
from podium.server.web.auth import login_required, session_user
from podium.server.web.forms import apply_change

team_pages = Blueprint("teams", __name__)


def _apply(slug: str, change, message) -> object:
    """Run one team change in a transaction, flash the outcome, and go back to the challenge's team panel."""
    challenge = challenge_or_404(db_session(), slug)
    apply_change(lambda s: change(s, challenge, session_user()), ApiError, message)
    return redirect(url_for("web.challenge_page", slug=slug) + "#team", code=303)


@team_pages.post("/challenges/<slug>/team")
@login_required
def create(slug: str):
    """Create a team (field `name`); you become its first member and see its join code."""
    name = request.form.get("name", "")
    return _apply(slug, lambda s, c, u: ops.create_team(s, c, u, name),
                  lambda t: f"Team {t.name} is created. Give your teammates the join code {t.join_code}.")


@team_pages.post("/challenges/<slug>/team/join")
@login_required
def join(slug: str):
    """Join a team with the code a teammate gives you (field `code`)."""
    code = request.form.get("code", "")
    return _apply(slug, lambda s, c, u: ops.join_team(s, c, u, code), lambda t: f"You joined team {t.name}.")


@team_pages.post("/challenges/<slug>/team/leave")
@login_required
def leave(slug: str):
    """Leave your team, while it has no scored submission."""
    return _apply(slug, lambda s, c, u: ops.leave_team(s, c, u), lambda t: f"You left team {t.name}.")
