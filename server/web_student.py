"""Student pages: the upload form, one submission's results, final picks, the model file."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_wtf.csrf import ValidationError, validate_csrf
from sqlalchemy import select

from server import leaderboard, states
from server.errors import ApiError
from server.instructor import cancel as cancel_submission
from server.intake import accept_submission
from server.models import Challenge, Submission
from server.services import db_session, services
from server.student import PickError, per_class, set_final
from server.submissions import can_view, private_visible
from server.web_auth import csrf, login_required, session_user

student = Blueprint("student", __name__)


def _verify_form_token() -> None:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        raise ApiError(400, "csrf", "the form has expired; reload the page and upload again")


def visible_submission(submission_id: int) -> Submission:
    """The submission if the logged-in user may see it (owner or instructor); 404 otherwise, so ids reveal nothing."""
    sub = db_session().get(Submission, submission_id)
    if sub is None or not can_view(sub, session_user()):
        abort(404)
    return sub


@student.post("/challenges/<slug>/submit")
@csrf.exempt  # checked inside, after the file has streamed to the store (see server.intake)
@login_required
def submit(slug: str):
    """The web upload form: same checks as the API; the outcome shows on the challenge page."""
    session = db_session()
    challenge = session.scalar(select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        abort(404)
    try:
        sub = accept_submission(session, session_user(), challenge, verify=_verify_form_token)
    except ApiError as exc:
        session.rollback()
        flash(f"Upload refused: {exc.message}", "error")
        return redirect(url_for("web.challenge_page", slug=slug) + "#submit", code=303)
    flash(f"Submission #{sub.id} received; it is queued for grading.", "ok")
    return redirect(url_for("web.challenge_page", slug=slug, new=sub.id) + "#mine", code=303)


@student.get("/submissions/<int:submission_id>")
@login_required
def submission_page(submission_id: int):
    """One submission: status, scores, rank, error, per-class accuracy and confusion matrix (public rows only)."""
    sub = visible_submission(submission_id)
    me = session_user()
    rank = leaderboard.user_rank(db_session(), sub.challenge, sub.user_id) if sub.status == states.SCORED else None
    return render_template("submission.html", me=me, s=sub, c=sub.challenge, rank=rank,
                           results=per_class(sub.challenge, sub), show_private=private_visible(sub.challenge, me))


@student.post("/submissions/<int:submission_id>/final")
@login_required
def final(submission_id: int):
    """Mark or unmark a submission as one of your (at most two) final picks."""
    sub = visible_submission(submission_id)
    session = db_session()
    try:
        set_final(session, session_user(), sub, request.form.get("final") == "1")
        session.commit()
    except PickError as exc:
        session.rollback()
        flash(str(exc), "error")
    target = request.form.get("back")
    if target == "challenge":
        return redirect(url_for("web.challenge_page", slug=sub.challenge.slug) + "#mine")
    return redirect(url_for("web.student.submission_page", submission_id=sub.id))


@student.post("/submissions/<int:submission_id>/cancel")
@login_required
def cancel(submission_id: int):
    """Cancel a submission that is still waiting or running; cancellations do not count against the daily limit."""
    sub = visible_submission(submission_id)
    session = db_session()
    if cancel_submission(session, sub, session_user()):
        session.commit()
        flash(f"Submission #{sub.id} cancelled.", "ok")
    else:
        flash(f"Submission #{sub.id} had already finished.", "error")
    if request.form.get("back") == "dashboard":
        return redirect(url_for("web.instructor.dashboard", slug=sub.challenge.slug), code=303)
    return redirect(url_for("web.challenge_page", slug=sub.challenge.slug) + "#mine", code=303)


@student.get("/submissions/<int:submission_id>/model.pt")
@login_required
def model_file(submission_id: int):
    """The uploaded file itself, for its owner and instructors."""
    sub = visible_submission(submission_id)
    return send_file(services().store.local_path(sub.model_sha256), mimetype="application/octet-stream",
                     as_attachment=True, download_name=f"submission-{sub.id}-{sub.filename}")
