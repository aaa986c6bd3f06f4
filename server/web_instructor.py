"""Instructor pages: dashboard, re-score, disqualify, reveal, window, exports, new challenges, courses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from podium.bundle import BundleError
from server import exports, instructor as ops
from server.challenge_admin import ChallengeExists, publish_upload
from server.courses import AccountError, create_course, import_roster, roster
from server.models import Challenge, Course, Rescore, Submission, User
from server.services import db_session, services
from server.web_auth import instructor_required, session_user

instructor = Blueprint("instructor", __name__, url_prefix="/instructor")


def _challenge(slug: str) -> Challenge:
    challenge = db_session().scalar(select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        abort(404)
    return challenge


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
    return naive.replace(tzinfo=timezone(-timedelta(minutes=int(offset_min or 0))))


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
    challenge = _challenge(slug)
    session = db_session()
    rescores = session.scalars(select(Rescore).where(Rescore.challenge_id == challenge.id)
                               .order_by(Rescore.id.desc()).limit(5)).all()
    courses = session.scalars(select(Course).order_by(Course.name)).all()
    student = request.args.get("student", "").strip() or None
    return render_template("instructor/dashboard.html", me=session_user(), c=challenge, student=student,
                           rows=ops.dashboard(session, challenge, student), limit=ops.DASHBOARD_ROWS,
                           rescores=rescores, courses=courses)


@instructor.post("/challenges/<slug>/rescore")
@instructor_required
def rescore(slug: str):
    """Re-score one submission (field submission_id) or all finished submissions of the challenge."""
    challenge = _challenge(slug)
    raw = request.form.get("submission_id", "").strip()
    ids = [int(raw)] if raw.isdigit() else None
    run = ops.rescore(db_session(), services().celery, challenge, session_user(), ids)
    flash(f"Re-scoring {len(run.before)} submission(s); the report below fills in as they finish.", "ok")
    return redirect(url_for("web.instructor.rescore_report", slug=slug, run_id=run.id), code=303)


@instructor.get("/challenges/<slug>/rescores/<int:run_id>")
@instructor_required
def rescore_report(slug: str, run_id: int):
    """What a re-score changed: old and new status and scores, per submission."""
    challenge = _challenge(slug)
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
    try:
        ops.disqualify_user(session, user, request.form.get("reason"))
        session.commit()
        flash(f"{user.username} {'disqualified' if user.disqualified_reason else 'reinstated'}.", "ok")
    except ValueError as exc:
        session.rollback()
        flash(str(exc), "error")
    slug = request.form.get("slug", "")
    return _back(slug) if slug else redirect(url_for("web.instructor.home"), code=303)


@instructor.post("/challenges/<slug>/reveal")
@instructor_required
def reveal(slug: str):
    """Reveal the private leaderboard (or hide it again)."""
    challenge = _challenge(slug)
    ops.reveal(db_session(), challenge, request.form.get("revealed", "1") == "1")
    db_session().commit()
    flash("The private leaderboard is now public." if challenge.revealed_at else "The private leaderboard is hidden.",
          "ok")
    return _back(slug)


@instructor.post("/challenges/<slug>/settings")
@instructor_required
def settings(slug: str):
    """Set the opening time, the deadline and the course of a challenge."""
    challenge = _challenge(slug)
    session = db_session()
    try:
        tz = request.form.get("tz_offset", "0")
        ops.set_window(session, challenge, parse_local(request.form.get("opens_at", ""), tz),
                       parse_local(request.form.get("deadline", ""), tz))
        course = request.form.get("course_id", "")
        challenge.course_id = int(course) if course.isdigit() else None
        session.commit()
        flash("Saved.", "ok")
    except ValueError as exc:
        session.rollback()
        flash(f"Not saved: {exc}", "error")
    return _back(slug)


@instructor.get("/challenges/<slug>/<any('leaderboard.csv', 'grades.csv'):what>")
@instructor_required
def export(slug: str, what: str):
    """The final leaderboard or the grade sheet as CSV."""
    challenge = _challenge(slug)
    make = exports.leaderboard_csv if what == "leaderboard.csv" else exports.grades_csv
    return Response(make(db_session(), challenge, session_user()), mimetype="text/csv",
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
            session = db_session()
            try:
                challenge = publish_upload(session, services().store, upload, replace=request.form.get("replace") == "1")
                session.commit()
            except (BundleError, ChallengeExists) as exc:
                session.rollback()
                flash(f"The bundle was refused: {exc}", "error")
            else:
                flash(f"Challenge {challenge.slug} is published.", "ok")
                return redirect(url_for("web.instructor.dashboard", slug=challenge.slug), code=303)
    return render_template("instructor/new_challenge.html", me=session_user())


@instructor.post("/courses")
@instructor_required
def new_course():
    """Create a course with a fresh join code."""
    session = db_session()
    try:
        course = create_course(session, request.form.get("name", ""))
        session.commit()
    except AccountError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("web.instructor.home"), code=303)
    return redirect(url_for("web.instructor.course", course_id=course.id), code=303)


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
        try:
            result = import_roster(session, c, text)
            session.commit()
        except AccountError as exc:
            session.rollback()
            flash(str(exc), "error")
    return render_template("instructor/course.html", me=session_user(), course=c, students=roster(session, c),
                           result=result)
