"""Server-rendered pages everyone sees: challenge list, challenge page, leaderboard, login."""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_login import logout_user
from sqlalchemy import select

from podium.core.board import USER
from podium.core.config import BASELINE_USER
from podium.core.models import Challenge, User, utcnow
from podium.server import costs, leaderboard, teams
from podium.server.auth import authenticate, end_every_session
from podium.server.charts import chart_table, progress_svg
from podium.server.conditional import board_etag, not_modified, rendered, with_validators
from podium.server.lifecycle import listed_for
from podium.server.lookup import challenge_or_404
from podium.server.markdown_render import render_markdown
from podium.server.redirects import safe_next
from podium.server.services import db_session
from podium.server.student import my_submissions, quota
from podium.server.throttle import ACCOUNT_FAILURES, ADDRESS_FAILURES, account_key, attempt_failed, limiter, mark_failed
from podium.server.web.account import account
from podium.server.web.auth import begin_session, session_user
from podium.server.web.instructor import instructor
from podium.server.web.student import student
from podium.server.web.teams import team_pages

web = Blueprint("web", __name__)
web.register_blueprint(account)
web.register_blueprint(student)
web.register_blueprint(instructor)
web.register_blueprint(team_pages)

CHART_USERS = 6
PROJECTOR_ROWS = 50  # the top N a projector shows (?limit= pages further)


@web.get("/")
def index():
    """The list of published challenges (instructors also see drafts and archived ones, marked)."""
    me = session_user()
    query = select(Challenge).where(listed_for(me)).order_by(Challenge.created_at.desc())
    return render_template("index.html", challenges=db_session().scalars(query).all(), me=me, now=utcnow())


@web.get("/challenges/<slug>")
def challenge_page(slug: str):
    """A challenge: description, data format, downloads, the upload form and the student's own submissions."""
    challenge = challenge_or_404(db_session(), slug)
    me = session_user()
    mine = my_submissions(db_session(), me, challenge) if me else []
    my_rank = leaderboard.rank_of(db_session(), challenge, me) if mine else None
    team = teams.team_of(db_session(), challenge, me)
    new = request.args.get("new", "")
    just_sent = next((s for s in mine if str(s.id) == new), None)  # the upload this page was reached from
    return render_template("challenge.html", c=challenge, readme_html=render_markdown(challenge.readme), me=me,
                           mine=mine, my_rank=my_rank, quota=quota(db_session(), me, challenge) if me else None,
                           just_sent=just_sent,
                           now=utcnow(), team=team, team_fixed=bool(team and teams.has_scored(db_session(), team.id)))


def chart_series(challenge: Challenge, viewer: User | None) -> list[tuple]:
    """The progress chart's lines: the top competitors and the baseline, labelled as this viewer sees names.

    Reads the top of the board and only the charted competitors' improvements (a bounded sample).
    """
    dbs = db_session()
    baseline = dbs.scalar(select(User.id).where(User.username == BASELINE_USER))
    baseline_owner = (USER, baseline) if baseline is not None else None
    top = leaderboard.top_owners(dbs, challenge, CHART_USERS + 1)
    wanted = [o for o in top if o != baseline_owner][:CHART_USERS] + ([baseline_owner] if baseline_owner else [])
    points = leaderboard.progress(dbs, challenge, wanted)
    names = leaderboard.names(dbs, [o for o in wanted if points[o]], viewer)
    return [(names[o], points[o], o == baseline_owner) for o in wanted if points[o]]


def _page_args() -> tuple[int, int]:
    """?limit= and ?offset= of a board page; 400 when they are not whole numbers in range."""
    try:
        limit = int(request.args.get("limit", PROJECTOR_ROWS))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        abort(400, "limit and offset must be whole numbers")
    if not 1 <= limit <= leaderboard.MAX_LIMIT or offset < 0:
        abort(400, f"limit must be 1 to {leaderboard.MAX_LIMIT}, offset 0 or more")
    return limit, offset


@web.get("/challenges/<slug>/leaderboard")
def leaderboard_page(slug: str):
    """Projector-friendly leaderboard that refreshes itself: the top rows, your own row, progress over time.

    Instructors get the class's view unless they ask for ?view=instructor: the page is meant for a
    projector, and real names and private scores must not reach the wall by accident. An unchanged
    board answers 304 to the page's refresh (ETag from the board's last change).
    """
    limit, offset = _page_args()
    dbs = db_session()
    challenge = challenge_or_404(dbs, slug)
    me = session_user()
    instructor_view = bool(me and me.is_instructor and request.args.get("view") == "instructor")
    viewer = me if instructor_view or not (me and me.is_instructor) else None
    who = (me.id, me.display_name, me.alias, instructor_view) if me else None
    etag, changed_at = board_etag(dbs, challenge, "html", who, limit, offset)
    flashes = bool(session.get("_flashes"))  # a pending message must reach this page, and only this one
    if not flashes:
        unchanged = not_modified(etag, changed_at)
        if unchanged is not None:
            return unchanged
    def render() -> bytes:
        board = leaderboard.build(dbs, challenge, viewer, limit, offset)
        mine = None
        if me and not me.is_instructor:
            mine = leaderboard.own_row(dbs, challenge, viewer, leaderboard.owner_for(dbs, challenge, me))
        changed = changed_at or utcnow()
        series = chart_series(challenge, viewer)
        every = leaderboard.cost_rows(dbs, challenge, viewer)  # the whole board's costs: the front is of everyone
        return render_template("leaderboard.html", c=challenge, board=board, me=me, mine=mine,
                               instructor_view=instructor_view, chart=progress_svg(series, changed),
                               chart_rows=chart_table(series), cost_chart=costs.scatter(every),
                               front=costs.front_rows(every), changed=changed, limit=limit, offset=offset,
                               baseline=BASELINE_USER).encode()

    # A signed-in page holds its session's CSRF token: only the anonymous (projector) page is shared.
    html = rendered.get(etag, render) if me is None and not flashes else render()
    return with_validators(make_response(html), etag, changed_at)


@web.get("/favicon.ico")
def favicon():
    """The site's icon, where browsers look for it."""
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                               max_age=86400)


@web.route("/login", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_FAILURES, key_func=account_key, methods=["POST"], deduct_when=attempt_failed,
               scope="login-account")
@limiter.limit(ADDRESS_FAILURES, methods=["POST"], deduct_when=attempt_failed, scope="login-address")
def login():
    """Log in with username and password (failed attempts are throttled per account and per address)."""
    if request.method == "POST":
        user = authenticate(db_session(), request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            begin_session(user)
            return redirect(safe_next(request.args.get("next"), url_for("web.index")))
        mark_failed()
        flash("Wrong username or password.", "error")
    return render_template("login.html", me=None)


@web.post("/logout")
def logout():
    """Log out, here and in every other browser signed in as you."""
    me = session_user()
    if me is not None:
        end_every_session(me)
        db_session().commit()
    logout_user()
    session.clear()
    return redirect(url_for("web.index"))
