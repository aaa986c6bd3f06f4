"""Classroom endpoints of the REST API (/api/v1): final picks, per-class results, and the instructor's actions."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from podium.core.bundle.spec import BundleError
from podium.core.models import Course, Rescore, Submission, User
from podium.server import exports, lifecycle
from podium.server import instructor as ops
from podium.server.api import schemas as sch
from podium.server.api.auth import current_user, instructor_only
from podium.server.api.spec import INSTRUCTOR, Binary, body, query, spec
from podium.server.challenge_admin import ChallengeExists, publish_upload
from podium.server.courses import AccountError, create_course, import_roster
from podium.server.errors import ApiError
from podium.server.fields import FieldError
from podium.server.lookup import challenge_or_404
from podium.server.lti import grades as lti_grades
from podium.server.services import db_session, services
from podium.server.student import PickError, may_pick, per_class, set_final
from podium.server.submissions import can_view, iso, submission_json

classroom_api = Blueprint("classroom_api", __name__, url_prefix="/api/v1")


def _visible(submission_id: int) -> tuple[User, Submission]:
    user = current_user()
    sub = db_session().get(Submission, submission_id)
    if sub is None or not can_view(sub, user):
        raise ApiError(404, "not_found", f"no submission {submission_id}")
    return user, sub


@classroom_api.get("/submissions/<int:submission_id>/results")
@spec(responses={200: sch.Results}, errors=(409,))
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
@spec(body=sch.FinalIn, responses={200: sch.Submission}, errors=(403, 409))
def final(submission_id: int):
    """Mark (`{"final": true}`) or unmark one of your (or your team's) scored submissions as final (two at most)."""
    user, sub = _visible(submission_id)
    if not may_pick(db_session(), user, sub):
        raise ApiError(403, "forbidden", "only the owner (or a member of its team) picks final submissions")
    try:
        set_final(db_session(), user, sub, body().final)
    except PickError as exc:
        raise ApiError(409, "final_picks", str(exc))
    db_session().commit()
    return jsonify(submission_json(sub, user))


@classroom_api.post("/submissions/<int:submission_id>/cancel")
@spec(responses={200: sch.Submission}, errors=(409,))
def cancel(submission_id: int):
    """Cancel a queued or running submission (owner or instructors); 409 when it already finished."""
    user, sub = _visible(submission_id)
    if not ops.cancel(db_session(), sub, user):
        raise ApiError(409, "finished", f"submission {submission_id} already finished")
    db_session().commit()
    db_session().refresh(sub)
    return jsonify(submission_json(sub, user))


@classroom_api.get("/challenges/<slug>/dashboard")
@spec(auth=INSTRUCTOR, responses={200: list[sch.DashboardRow]}, query=sch.DashboardQuery)
@instructor_only
def dashboard(slug: str):
    """A page of submissions, newest first, with scores, timings, device and the students who uploaded the identical
    model (instructors); ?student=, ?status=, ?limit=, and ?before=<the last id of a page> for the next one."""
    viewer, q = current_user(), query()
    page = ops.dashboard(db_session(), challenge_or_404(db_session(), slug), q.student, q.status, q.before, q.limit)
    return jsonify([dict(submission_json(r.sub, viewer), same_model_as=r.shared_with) for r in page.rows])


@classroom_api.post("/challenges/<slug>/rescore")
@spec(auth=INSTRUCTOR, body=sch.RescoreIn, responses={202: sch.RescoreStarted})
@instructor_only
def rescore(slug: str):
    """Re-score every finished submission, or those in `{"submission_ids": [...]}`; 202 with the report's id."""
    user = current_user()
    run = ops.rescore(db_session(), services().celery, challenge_or_404(db_session(), slug), user,
                      body().submission_ids)
    return jsonify({"rescore": run.id, "submissions": [b["id"] for b in run.before]}), 202


@classroom_api.get("/rescores/<int:run_id>")
@spec(auth=INSTRUCTOR, responses={200: sch.RescoreReport})
@instructor_only
def rescore_report(run_id: int):
    """Old and new status and scores of every submission a re-score re-opened (instructors)."""
    run = db_session().get(Rescore, run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no re-score {run_id}")
    changes = ops.rescore_report(db_session(), run)
    return jsonify({"id": run.id, "created_at": iso(run.created_at), "pending": sum(c.pending for c in changes),
                    "changes": [dict(vars(c), changed=c.changed, pending=c.pending) for c in changes]})


@classroom_api.post("/submissions/<int:submission_id>/disqualify")
@spec(auth=INSTRUCTOR, body=sch.ReasonIn, responses={200: sch.Submission}, errors=(422,))
@instructor_only
def disqualify_submission(submission_id: int):
    """Disqualify a submission with `{"reason": "..."}`; an empty reason reinstates it (instructors)."""
    viewer = current_user()
    sub = db_session().get(Submission, submission_id)
    if sub is None:
        raise ApiError(404, "not_found", f"no submission {submission_id}")
    ops.disqualify_submission(db_session(), sub, body().reason)
    db_session().commit()
    lti_grades.after_submission_disqualified(db_session(), services().celery, sub)
    return jsonify(submission_json(sub, viewer))


@classroom_api.post("/users/<username>/disqualify")
@spec(auth=INSTRUCTOR, body=sch.ReasonIn, responses={200: sch.UserDisqualified}, errors=(409, 422))
@instructor_only
def disqualify_user(username: str):
    """Disqualify a student from every leaderboard with `{"reason": "..."}`; empty reinstates (instructors)."""
    user = db_session().scalar(select(User).where(User.username == username))
    if user is None:
        raise ApiError(404, "not_found", f"no user {username!r}")
    try:
        ops.disqualify_user(db_session(), user, body().reason)
    except FieldError:
        raise  # 422, answered by the error handlers
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc))
    db_session().commit()
    lti_grades.after_user_disqualified(db_session(), services().celery, user)
    return jsonify({"user": user.username, "disqualified_reason": user.disqualified_reason})


@classroom_api.post("/challenges/<slug>/reveal")
@spec(auth=INSTRUCTOR, body=sch.RevealIn, responses={200: sch.Revealed})
@instructor_only
def reveal(slug: str):
    """Reveal the private leaderboard (`{"revealed": false}` hides it again) (instructors)."""
    challenge = challenge_or_404(db_session(), slug)
    ops.reveal(db_session(), challenge, body().revealed)
    db_session().commit()
    lti_grades.send_final_scores(db_session(), services().celery, challenge)
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
@spec(auth=INSTRUCTOR, body=sch.ChallengeWindowIn, responses={200: sch.ChallengeWindow}, errors=(422,))
@instructor_only
def update_challenge(slug: str):
    """Set `opens_at` and/or `deadline` (ISO 8601 with offset; null clears) (instructors)."""
    challenge = challenge_or_404(db_session(), slug)
    given = body()
    opens_at = _when(given.opens_at) if "opens_at" in given.model_fields_set else challenge.opens_at
    deadline = _when(given.deadline) if "deadline" in given.model_fields_set else challenge.deadline
    try:
        ops.set_window(db_session(), challenge, opens_at, deadline)
    except ValueError as exc:
        raise ApiError(422, "bad_window", str(exc))
    db_session().commit()
    return jsonify({"slug": challenge.slug, "opens_at": iso(challenge.opens_at), "deadline": iso(challenge.deadline)})


@classroom_api.post("/challenges")
@spec(auth=INSTRUCTOR, body=sch.BundleIn, body_media="multipart/form-data", responses={201: sch.ChallengeCreated},
      errors=(400, 409, 413, 422))
@instructor_only
def create_challenge():
    """Add a challenge from a bundle zip in the multipart field `bundle`: a draft unless `publish=1` (`replace=1` to update) (instructors)."""
    upload = request.files.get("bundle")
    if upload is None:
        raise ApiError(400, "missing_field", "send the bundle zip in the multipart field 'bundle'")
    session = db_session()
    notes: list[str] = []
    try:
        challenge = publish_upload(session, services().store, upload, replace=request.form.get("replace") == "1",
                                   publish=request.form.get("publish") == "1", notes=notes)
    except ChallengeExists as exc:
        raise ApiError(409, "exists", str(exc))
    except BundleError as exc:
        raise ApiError(422, "invalid_bundle", str(exc))
    session.commit()
    return jsonify({"slug": challenge.slug, "title": challenge.title, "state": challenge.state, "notes": notes}), 201


@classroom_api.post("/challenges/<slug>/<any('publish', 'unpublish', 'archive'):action>")
@spec(auth=INSTRUCTOR, responses={200: sch.ChallengeState})
@instructor_only
def challenge_state(slug: str, action: str):
    """Publish a challenge, make it a draft again (unpublish) or archive it (instructors)."""
    challenge = challenge_or_404(db_session(), slug)
    changed = lifecycle.move(challenge, action)
    db_session().commit()
    return jsonify({"challenge": challenge.slug, "state": challenge.state, "changed": changed})


@classroom_api.get("/challenges/<slug>/<any('leaderboard.csv', 'grades.csv'):what>")
@spec(auth=INSTRUCTOR, responses={200: Binary("text/csv", description="CSV with a header row")})
@instructor_only
def export(slug: str, what: str):
    """The final leaderboard or the grade sheet as CSV (instructors)."""
    viewer = current_user()
    challenge = challenge_or_404(db_session(), slug)
    make = exports.leaderboard_csv if what == "leaderboard.csv" else exports.grades_csv
    return Response(exports.stream(services().db, make, challenge.id, viewer.id), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{slug}-{what}"'})


@classroom_api.post("/courses")
@spec(auth=INSTRUCTOR, body=sch.CourseIn, responses={201: sch.Course}, errors=(422,))
@instructor_only
def new_course():
    """Create a course (`{"name": ...}`); answers its join code (instructors)."""
    try:
        course = create_course(db_session(), body().name)
    except AccountError as exc:
        raise ApiError(422, "invalid", str(exc))
    db_session().commit()
    return jsonify({"id": course.id, "name": course.name, "join_code": course.join_code}), 201


@classroom_api.post("/courses/<int:course_id>/roster")
@spec(auth=INSTRUCTOR, body=Binary("text/csv"), body_media="text/csv", responses={200: sch.RosterResult}, errors=(422,))
@instructor_only
def roster(course_id: int):
    """Import a roster CSV (the request body, text/csv): username, display name, email (instructors)."""
    course = db_session().get(Course, course_id)
    if course is None:
        raise ApiError(404, "not_found", f"no course {course_id}")
    try:
        result = import_roster(db_session(), course, request.get_data(as_text=True))
    except AccountError as exc:
        raise ApiError(422, "invalid_roster", str(exc))
    db_session().commit()
    return jsonify(vars(result))
