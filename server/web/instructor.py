"""Instructor pages: dashboard, re-score, disqualify, reveal, window, exports, new challenges, courses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from podium.core import states
from podium.core.bundle.spec import BundleError
from podium.core.models import Challenge, Course, Rescore, Submission, Team, User
from podium.server import exports, leaderboard, lifecycle, teams
from podium.server import instructor as ops
from podium.server.auth import end_every_session
from podium.server.challenge_admin import ChallengeExists, publish_upload
from podium.server.courses import AccountError, create_course, import_roster, roster
from podium.server.errors import ApiError
from podium.server.lookup import challenge_or_404
from podium.server.lti import grades as lti_grades
from podium.server.services import db_session, services
from podium.server.web.auth import instructor_required, session_user
from podium.server.web.forms import apply_change

instructor = Blueprint("instructor", __name__, url_prefix="/instructor")


def _back(slug: str, anchor: str = ""):
    return redirect(url_for("web.instructor.dashboard", slug=slug) + anchor, code=303)


def parse_local(value: str, offset_min: str) -> datetime | None:
    """A datetime-local form value plus the browser's UTC offset in minutes (JS getTimezoneOffset) -> aware time."""
    value = (value or "").strip()
    if not value:
        return None
    naive = datetime.fromisoformat(value)
    if naive.tzinfo is not None:
        return naive
    offset = int(offset_min or 0)
    if abs(offset) >= 24 * 60:
        raise ValueError("the time zone offset must be less than 24 hours")
    return naive.replace(tzinfo=timezone(-timedelta(minutes=offset)))


@instructor.get("/")
@instructor_required
def home():
    """Every challenge and course, with links to their dashboards."""
    session = db_session()
    challenges = session.scalars(select(Challenge).order_by(Challenge.created_at.desc())).all()
    courses = session.scalars(select(Course).order_by(Course.created_at.desc())).all()
    return render_template("instructor/home.html", me=session_user(), challenges=challenges, courses=courses)


@instructor.get("/challenges/<slug>")
@instructor_required
def dashboard(slug: str):
    """Every submission of a challenge with status, scores, timings, model hash (shared models flagged), error."""
    challenge = challenge_or_404(db_session(), slug)
    session = db_session()
    rescores = session.scalars(select(Rescore).where(Rescore.challenge_id == challenge.id)
                               .order_by(Rescore.id.desc()).limit(5)).all()
    courses = session.scalars(select(Course).order_by(Course.name)).all()
    student = request.args.get("student", "").strip() or None
    status = request.args.get("status", "").strip() or None
    before = request.args.get("before", "").strip()
    if (before and not before.isdigit()) or (status and status not in states.STATUSES):
        abort(400, "before is a submission id; status one of " + ", ".join(states.STATUSES))
    page = ops.dashboard(session, challenge, student, status, int(before) if before else None)
    return render_template("instructor/dashboard.html", me=session_user(), c=challenge, student=student,
                           status=status, statuses=states.STATUSES, before=before, rows=page.rows, older=page.older,
                           on_board=leaderboard.total(session, challenge), rescores=rescores, courses=courses,
                           actions=lifecycle.ACTIONS, explained=lifecycle.EXPLAINED,
                           teams=ops.team_overview(session, challenge) if challenge.is_team else [],
                           team_events=teams.events(session, challenge, 50) if challenge.is_team else [],
                           without_team=teams.without_team(session, challenge) if challenge.is_team else [])


@instructor.post("/challenges/<slug>/teams/move")
@instructor_required
def move_student(slug: str):
    """Move a student (field `username`) into a team (field `team_id`; empty: out of any team), at any time."""
    challenge = challenge_or_404(db_session(), slug)
    username = request.form.get("username", "").strip()
    raw = request.form.get("team_id", "").strip()

    def move(session):
        student = session.scalar(select(User).where(User.username == username))
        if student is None:
            raise ApiError(404, "not_found", f"no user {username!r}")
        target = session.get(Team, int(raw)) if raw.isdigit() else None
        if raw and (target is None or target.challenge_id != challenge.id):
            raise ApiError(404, "not_found", "no such team in this challenge")
        teams.move_student(session, challenge, session_user(), student, target)
        return f"{student.username} is now in {'team ' + target.name if target else 'no team'}."

    apply_change(move, ApiError, lambda done: done, refused_prefix="Not moved: ")
    return _back(slug, "#teams")


@instructor.post("/challenges/<slug>/rescore")
@instructor_required
def rescore(slug: str):
    """Re-score one submission (field submission_id) or all finished submissions of the challenge."""
    challenge = challenge_or_404(db_session(), slug)
    raw = request.form.get("submission_id", "").strip()
    ids = [int(raw)] if raw.isdigit() else None
    run = ops.rescore(db_session(), services().celery, challenge, session_user(), ids)
    flash(f"Re-scoring {len(run.before)} submission(s); the report below fills in as they finish.", "ok")
    return redirect(url_for("web.instructor.rescore_report", slug=slug, run_id=run.id), code=303)


@instructor.get("/challenges/<slug>/rescores/<int:run_id>")
@instructor_required
def rescore_report(slug: str, run_id: int):
    """What a re-score changed: old and new status and scores, per submission."""
    challenge = challenge_or_404(db_session(), slug)
    run = db_session().get(Rescore, run_id)
    if run is None or run.challenge_id != challenge.id:
        abort(404)
    changes = ops.rescore_report(db_session(), run)
    return render_template("instructor/rescore.html", me=session_user(), c=challenge, run=run, changes=changes,
                           pending=any(ch.pending for ch in changes))


@instructor.post("/submissions/<int:submission_id>/disqualify")
@instructor_required
def disqualify_submission(submission_id: int):
    """Disqualify one submission with a reason (an empty reason reinstates it)."""
    session = db_session()
    sub = session.get(Submission, submission_id)
    if sub is None:
        abort(404)
    ops.disqualify_submission(session, sub, request.form.get("reason"))
    session.commit()
    lti_grades.after_submission_disqualified(session, services().celery, sub)
    flash(f"Submission #{sub.id} {'disqualified' if sub.disqualified_reason else 'reinstated'}.", "ok")
    return _back(sub.challenge.slug)


@instructor.post("/users/<int:user_id>/disqualify")
@instructor_required
def disqualify_user(user_id: int):
    """Disqualify a student from every leaderboard with a reason (an empty reason reinstates them)."""
    session = db_session()
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    apply_change(lambda s: ops.disqualify_user(s, user, request.form.get("reason")), ValueError,
                 lambda _: f"{user.username} {'disqualified' if user.disqualified_reason else 'reinstated'}.")
    lti_grades.after_user_disqualified(db_session(), services().celery, user)
    slug = request.form.get("slug", "")
    return _back(slug) if slug else redirect(url_for("web.instructor.home"), code=303)


@instructor.post("/challenges/<slug>/reveal")
@instructor_required
def reveal(slug: str):
    """Reveal the private leaderboard (or hide it again)."""
    challenge = challenge_or_404(db_session(), slug)
    ops.reveal(db_session(), challenge, request.form.get("revealed", "1") == "1")
    db_session().commit()
    lti_grades.send_final_scores(db_session(), services().celery, challenge)
    flash("The private leaderboard is now public." if challenge.revealed_at else "The private leaderboard is hidden.",
          "ok")
    return _back(slug)


@instructor.post("/challenges/<slug>/state")
@instructor_required
def state(slug: str):
    """Publish, unpublish (back to draft) or archive a challenge (field `action`)."""
    challenge = challenge_or_404(db_session(), slug)
    apply_change(lambda s: lifecycle.move(challenge, request.form.get("action", "")), lifecycle.LifecycleError,
                 lambda _: f"Challenge {challenge.slug} is {lifecycle.EXPLAINED[challenge.state]}.")
    return _back(slug)


@instructor.post("/challenges/<slug>/settings")
@instructor_required
def settings(slug: str):
    """Set the opening time, the deadline and the course of a challenge."""
    challenge = challenge_or_404(db_session(), slug)

    def save(session):
        tz = request.form.get("tz_offset", "0")
        ops.set_window(session, challenge, parse_local(request.form.get("opens_at", ""), tz),
                       parse_local(request.form.get("deadline", ""), tz))
        course = request.form.get("course_id", "")
        if course.isdigit() and session.get(Course, int(course)) is None:
            raise ValueError("there is no such course")
        challenge.course_id = int(course) if course.isdigit() else None

    apply_change(save, ValueError, lambda _: "Saved.", refused_prefix="Not saved: ")
    return _back(slug)


@instructor.get("/challenges/<slug>/<any('leaderboard.csv', 'grades.csv'):what>")
@instructor_required
def export(slug: str, what: str):
    """The final leaderboard or the grade sheet as CSV."""
    challenge = challenge_or_404(db_session(), slug)
    make = exports.leaderboard_csv if what == "leaderboard.csv" else exports.grades_csv
    return Response(exports.stream(services().db, make, challenge.id, session_user().id), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{slug}-{what}"'})


@instructor.route("/challenges/new", methods=["GET", "POST"])
@instructor_required
def new_challenge():
    """Create (or replace) a challenge from a bundle zip."""
    if request.method == "POST":
        upload = request.files.get("bundle")
        if upload is None or not upload.filename:
            flash("Choose the bundle zip to upload.", "error")
        else:
            notes: list[str] = []
            ok, challenge = apply_change(
                lambda s: publish_upload(s, services().store, upload, replace=request.form.get("replace") == "1",
                                         publish=request.form.get("publish") == "1", notes=notes),
                (BundleError, ChallengeExists), lambda c: f"Challenge {c.slug} is {lifecycle.EXPLAINED[c.state]}.",
                refused_prefix="The bundle was refused: ")
            for note in notes:
                flash(note, "warning")
            if ok:
                return redirect(url_for("web.instructor.dashboard", slug=challenge.slug), code=303)
    return render_template("instructor/new_challenge.html", me=session_user())


@instructor.post("/courses")
@instructor_required
def new_course():
    """Create a course with a fresh join code."""
    ok, course = apply_change(lambda s: create_course(s, request.form.get("name", "")), AccountError)
    if not ok:
        return redirect(url_for("web.instructor.home"), code=303)
    return redirect(url_for("web.instructor.course", course_id=course.id), code=303)


@instructor.post("/courses/<int:course_id>/students/<int:user_id>/sign-out")
@instructor_required
def sign_out_everywhere(course_id: int, user_id: int):
    """End every browser session of a student (a lost laptop, a shared computer)."""
    session = db_session()
    user = session.get(User, user_id)
    if user is None or user.course_id != course_id:
        abort(404)
    end_every_session(user)
    session.commit()
    flash(f"{user.username} is signed out everywhere.", "ok")
    return redirect(url_for("web.instructor.course", course_id=course_id), code=303)


@instructor.route("/courses/<int:course_id>", methods=["GET", "POST"])
@instructor_required
def course(course_id: int):
    """A course: its join code, its roster, and a roster CSV import."""
    session = db_session()
    c = session.get(Course, course_id)
    if c is None:
        abort(404)
    result = None
    if request.method == "POST":
        upload = request.files.get("roster")
        text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("csv", "")
        _, result = apply_change(lambda s: import_roster(s, c, text), AccountError)
    return render_template("instructor/course.html", me=session_user(), course=c, students=roster(session, c),
                           result=result)
