"""Server-rendered pages everyone sees: challenge list, challenge page, leaderboard, login."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from sqlalchemy import select

from podium.baseline import BASELINE_USER
from server import leaderboard
from server.auth import verify_password
from server.charts import best_so_far, progress_svg
from server.markdown_render import render_markdown
from server.models import Challenge, User, utcnow
from server.services import db_session
from server.student import my_submissions, quota
from server.web_account import account
from server.web_auth import SessionUser, session_user
from server.web_instructor import instructor
from server.web_student import student

web = Blueprint("web", __name__)
web.register_blueprint(account)
web.register_blueprint(student)
web.register_blueprint(instructor)

CHART_USERS = 6


def challenge_or_404(slug: str) -> Challenge:
    """The challenge with this slug, or a 404 page."""
    challenge = db_session().scalar(select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        abort(404)
    return challenge


def _safe_next(target: str | None) -> str:
    # Only same-site paths, so the login form cannot bounce a student to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.index")


@web.get("/")
def index():
    """The list of challenges."""
    challenges = db_session().scalars(select(Challenge).order_by(Challenge.created_at.desc())).all()
    return render_template("index.html", challenges=challenges, me=session_user(), now=utcnow())


@web.get("/challenges/<slug>")
def challenge_page(slug: str):
    """A challenge: description, data format, downloads, the upload form and the student's own submissions."""
    challenge = challenge_or_404(slug)
    me = session_user()
    mine = my_submissions(db_session(), me, challenge) if me else []
    my_rank = leaderboard.user_rank(db_session(), challenge, me.id) if mine else None
    return render_template("challenge.html", c=challenge, readme_html=render_markdown(challenge.readme), me=me,
                           mine=mine, my_rank=my_rank, quota=quota(db_session(), me, challenge) if me else None,
                           now=utcnow())


def chart_for(challenge: Challenge, people: dict, viewer: User | None):
    """The SVG progress chart of the top students and the baseline, labelled as this viewer sees names."""
    session = db_session()
    # Only the charted students' history is read: a whole class's history is every submission.
    top = leaderboard.top_users(session, challenge, CHART_USERS + 1, people)
    baseline = session.scalar(select(User.id).where(User.username == BASELINE_USER))
    wanted = [u for u in top if u != baseline][:CHART_USERS] + ([baseline] if baseline is not None else [])
    history = leaderboard.history(session, challenge, wanted)
    user_ids = [u for u in wanted if any(h[0] == u for h in history)]
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    best = best_so_far(history, user_ids)
    series = [(leaderboard.display_name(users[u], viewer), best[u], u == baseline) for u in user_ids]
    return progress_svg(series, utcnow())


@web.get("/challenges/<slug>/leaderboard")
def leaderboard_page(slug: str):
    """Projector-friendly leaderboard that refreshes itself, with a chart of progress over time.

    Instructors get the class's view unless they ask for ?view=instructor: the page is meant for a
    projector, and real names and private scores must not reach the wall by accident.
    """
    challenge = challenge_or_404(slug)
    me = session_user()
    instructor_view = bool(me and me.is_instructor and request.args.get("view") == "instructor")
    viewer = me if instructor_view or not (me and me.is_instructor) else None
    people = leaderboard.board_students(db_session(), challenge)
    board = leaderboard.build(db_session(), challenge, viewer, people)
    return render_template("leaderboard.html", c=challenge, board=board, me=me, instructor_view=instructor_view,
                           chart=chart_for(challenge, people, viewer), now=utcnow(), baseline=BASELINE_USER)


@web.route("/login", methods=["GET", "POST"])
def login():
    """Log in with username and password."""
    if request.method == "POST":
        user = db_session().scalar(select(User).where(User.username == request.form.get("username", "").strip()))
        if user and verify_password(user, request.form.get("password", "")):
            login_user(SessionUser(user))
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong username or password.", "error")
    return render_template("login.html", me=None)


@web.post("/logout")
def logout():
    """Log out."""
    logout_user()
    return redirect(url_for("web.index"))
