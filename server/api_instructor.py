"""Classroom endpoints of the REST API (/api/v1): final picks, per-class results, and the instructor's actions."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from podium.bundle import BundleError
from server import exports, instructor as ops
from server.api import current_user, get_challenge
from server.challenge_admin import ChallengeExists, publish_upload
from server.courses import AccountError, create_course, import_roster
from server.errors import ApiError
from server.models import Course, Rescore, Submission, User
from server.services import db_session, services
from server.student import PickError, per_class, set_final
from server.submissions import can_view, iso, submission_json

classroom_api = Blueprint("classroom_api", __name__, url_prefix="/api/v1")


def _instructor() -> User:
    user = current_user()
    if not user.is_instructor:
        raise ApiError(403, "forbidden", "only instructors may do this")
    return user


def _visible(submission_id: int) -> tuple[User, Submission]:
    user = current_user()
    sub = db_session().get(Submission, submission_id)
    if sub is None or not can_view(sub, user):
        raise ApiError(404, "not_found", f"no submission {submission_id}")
    return user, sub


def _body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else request.form.to_dict()


@classroom_api.get("/submissions/<int:submission_id>/results")
def results(submission_id: int):
    """Per-class accuracy and the confusion matrix on the public rows (owner and instructors)."""
    _, sub = _visible(submission_id)
    found = per_class(sub.challenge, sub)
    if found is None:
        raise ApiError(409, "not_scored", f"submission {submission_id} is {sub.status}, not scored")
    rows, confusion = found
    return jsonify({"id": sub.id, "labels": list(sub.challenge.labels), "confusion": confusion,
                    "per_class": [{"label": r.label, "accuracy": r.accuracy, "support": r.support} for r in rows]})


@classroom_api.post("/submissions/<int:submission_id>/final")
def final(submission_id: int):
    """Mark (`{"final": true}`) or unmark one of your scored submissions as a final pick (two at most)."""
    user, sub = _visible(submission_id)
    if sub.user_id != user.id:
        raise ApiError(403, "forbidden", "only the owner picks final submissions")
    try:
        set_final(db_session(), user, sub, bool(_body().get("final", True)))
    except PickError as exc:
        raise ApiError(409, "final_picks", str(exc))
    db_session().commit()
    return jsonify(submission_json(sub, user))


@classroom_api.post("/submissions/<int:submission_id>/cancel")
def cancel(submission_id: int):
    """Cancel a queued or running submission (owner or instructors); 409 when it already finished."""
    user, sub = _visible(submission_id)
    if not ops.cancel(db_session(), sub, user):
        raise ApiError(409, "finished", f"submission {submission_id} already finished")
    db_session().commit()
    db_session().refresh(sub)
    return jsonify(submission_json(sub, user))


@classroom_api.get("/challenges/<slug>/dashboard")
def dashboard(slug: str):
    """Every submission with scores, timings, device and the students who uploaded the identical model (instructors)."""
    viewer = _instructor()
    rows = ops.dashboard(db_session(), get_challenge(slug))
    return jsonify([dict(submission_json(r.sub, viewer), same_model_as=r.shared_with) for r in rows])


@classroom_api.post("/challenges/<slug>/rescore")
def rescore(slug: str):
    """Re-score every finished submission, or those in `{"submission_ids": [...]}`; 202 with the report's id."""
    user = _instructor()
    ids = _body().get("submission_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
        raise ApiError(400, "bad_request", "submission_ids must be a list of integers")
    run = ops.rescore(db_session(), services().celery, get_challenge(slug), user, ids)
    return jsonify({"rescore": run.id, "submissions": [b["id"] for b in run.before]}), 202


@classroom_api.get("/rescores/<int:run_id>")
def rescore_report(run_id: int):
    """Old and new status and scores of every submission a re-score re-opened (instructors)."""
    _instructor()
    run = db_session().get(Rescore, run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no re-score {run_id}")
    changes = ops.rescore_report(db_session(), run)
    return jsonify({"id": run.id, "created_at": iso(run.created_at), "pending": sum(c.pending for c in changes),
                    "changes": [dict(vars(c), changed=c.changed, pending=c.pending) for c in changes]})


@classroom_api.post("/submissions/<int:submission_id>/disqualify")
def disqualify_submission(submission_id: int):
    """Disqualify a submission with `{"reason": "..."}`; an empty reason reinstates it (instructors)."""
    viewer = _instructor()
    sub = db_session().get(Submission, submission_id)
    if sub is None:
        raise ApiError(404, "not_found", f"no submission {submission_id}")
    ops.disqualify_submission(db_session(), sub, _body().get("reason"))
    db_session().commit()
    return jsonify(submission_json(sub, viewer))


@classroom_api.post("/users/<username>/disqualify")
def disqualify_user(username: str):
    """Disqualify a student from every leaderboard with `{"reason": "..."}`; empty reinstates (instructors)."""
    _instructor()
    user = db_session().scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiError(404, "not_found", f"no user {username!r}")
    try:
        ops.disqualify_user(db_session(), user, _body().get("reason"))
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc))
    db_session().commit()
    return jsonify({"user": user.username, "disqualified_reason": user.disqualified_reason})


@classroom_api.post("/challenges/<slug>/reveal")
def reveal(slug: str):
    """Reveal the private leaderboard (`{"revealed": false}` hides it again) (instructors)."""
    _instructor()
    challenge = get_challenge(slug)
    ops.reveal(db_session(), challenge, bool(_body().get("revealed", True)))
    db_session().commit()
    return jsonify({"challenge": challenge.slug, "revealed": challenge.revealed_at is not None,
                    "revealed_at": iso(challenge.revealed_at)})


def _when(value) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, "bad_date", f"{value!r} is not an ISO 8601 date-time")
    if parsed.tzinfo is None:
        raise ApiError(400, "bad_date", f"{value!r} has no time zone offset")
    return parsed


@classroom_api.patch("/challenges/<slug>")
def update_challenge(slug: str):
    """Set `opens_at` and/or `deadline` (ISO 8601 with offset; null clears) (instructors)."""
    _instructor()
    challenge = get_challenge(slug)
    body = _body()
    opens_at = _when(body["opens_at"]) if "opens_at" in body else challenge.opens_at
    deadline = _when(body["deadline"]) if "deadline" in body else challenge.deadline
    try:
        ops.set_window(db_session(), challenge, opens_at, deadline)
    except ValueError as exc:
        raise ApiError(422, "bad_window", str(exc))
    db_session().commit()
    return jsonify({"slug": challenge.slug, "opens_at": iso(challenge.opens_at), "deadline": iso(challenge.deadline)})


@classroom_api.post("/challenges")
def create_challenge():
    """Publish a challenge from a bundle zip in the multipart field `bundle` (`replace=1` to update) (instructors)."""
    _instructor()
    upload = request.files.get("bundle")
    if upload is None:
        raise ApiError(400, "missing_field", "send the bundle zip in the multipart field 'bundle'")
    session = db_session()
    try:
        challenge = publish_upload(session, services().store, upload, replace=request.form.get("replace") == "1")
    except ChallengeExists as exc:
        raise ApiError(409, "exists", str(exc))
    except BundleError as exc:
        raise ApiError(422, "invalid_bundle", str(exc))
    session.commit()
    return jsonify({"slug": challenge.slug, "title": challenge.title}), 201


@classroom_api.get("/challenges/<slug>/<any('leaderboard.csv', 'grades.csv'):what>")
def export(slug: str, what: str):
    """The final leaderboard or the grade sheet as CSV (instructors)."""
    viewer = _instructor()
    challenge = get_challenge(slug)
    make = exports.leaderboard_csv if what == "leaderboard.csv" else exports.grades_csv
    return Response(make(db_session(), challenge, viewer), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{slug}-{what}"'})


@classroom_api.post("/courses")
def new_course():
    """Create a course (`{"name": ...}`); answers its join code (instructors)."""
    _instructor()
    try:
        course = create_course(db_session(), str(_body().get("name", "")))
    except AccountError as exc:
        raise ApiError(422, "invalid", str(exc))
    db_session().commit()
    return jsonify({"id": course.id, "name": course.name, "join_code": course.join_code}), 201


@classroom_api.post("/courses/<int:course_id>/roster")
def roster(course_id: int):
    """Import a roster CSV (the request body, text/csv): username, display name, email (instructors)."""
    _instructor()
    course = db_session().get(Course, course_id)
    if course is None:
        raise ApiError(404, "not_found", f"no course {course_id}")
    try:
        result = import_roster(db_session(), course, request.get_data(as_text=True))
    except AccountError as exc:
        raise ApiError(422, "invalid_roster", str(exc))
    db_session().commit()
    return jsonify(vars(result))
