"""Server-rendered pages: challenge list, challenge page, leaderboard, login."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from sqlalchemy import select

from server import leaderboard
from server.auth import verify_password
from server.markdown_render import render_markdown
from server.models import Challenge, User
from server.services import db_session
from server.web_auth import SessionUser, session_user

web = Blueprint("web", __name__)


def _challenge_or_404(slug: str) -> Challenge:
    challenge = db_session().scalar(select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        abort(404)
    return challenge


@web.get("/")
def index():
    """The list of challenges."""
    challenges = db_session().scalars(select(Challenge).order_by(Challenge.created_at.desc())).all()
    return render_template("index.html", challenges=challenges, me=session_user())


@web.get("/challenges/<slug>")
def challenge_page(slug: str):
    """A challenge: description, data format, feature recipe, downloads."""
    challenge = _challenge_or_404(slug)
    return render_template("challenge.html", c=challenge, readme_html=render_markdown(challenge.readme),
                           me=session_user())


@web.get("/challenges/<slug>/leaderboard")
def leaderboard_page(slug: str):
    """Projector-friendly leaderboard."""
    challenge = _challenge_or_404(slug)
    me = session_user()
    board = leaderboard.build(db_session(), challenge, me)
    return render_template("leaderboard.html", c=challenge, board=board, me=me)


@web.route("/login", methods=["GET", "POST"])
def login():
    """Log in with username and password."""
    if request.method == "POST":
        user = db_session().scalar(select(User).where(User.username == request.form.get("username", "")))
        if user and verify_password(user, request.form.get("password", "")):
            login_user(SessionUser(user))
            return redirect(request.args.get("next") or url_for("web.index"))
        flash("Wrong username or password.")
    return render_template("login.html", me=None)


@web.post("/logout")
def logout():
    """Log out."""
    logout_user()
    return redirect(url_for("web.index"))
