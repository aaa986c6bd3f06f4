"""Student pages: the upload form, one submission's results, final picks, the model file."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_wtf.csrf import ValidationError, validate_csrf

from podium.core import states
from podium.core.models import Submission
from podium.server import costs, leaderboard
from podium.server.errors import ApiError
from podium.server.instructor import cancel as cancel_submission
from podium.server.intake import accept_submission
from podium.server.lookup import challenge_or_404
from podium.server.services import db_session, services
from podium.server.student import PickError, may_pick, per_class, set_final
from podium.server.submissions import can_view, private_visible
from podium.server.web.auth import csrf, login_required, session_user
from podium.server.web.forms import apply_change

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
@csrf.exempt  # checked inside, after the file has streamed to the store (see podium.server.intake)
@login_required
def submit(slug: str):
    """The web upload form: same checks as the API; the outcome shows on the challenge page."""
    challenge = challenge_or_404(db_session(), slug)
    ok, sub = apply_change(lambda s: accept_submission(s, session_user(), challenge, verify=_verify_form_token),
                           ApiError, refused_prefix="Upload refused: ", refused_category="upload-error")
    # Either way the page opens at the form, the answer just under it (#upload-result); an accepted one follows its row live.
    if not ok:
        return redirect(url_for("web.challenge_page", slug=slug) + "#upload-form", code=303)
    return redirect(url_for("web.challenge_page", slug=slug, new=sub.id) + "#upload-form", code=303)


@student.get("/submissions/<int:submission_id>")
@login_required
def submission_page(submission_id: int):
    """One submission: status, scores, rank, error, per-class accuracy and confusion matrix (public rows only)."""
    sub = visible_submission(submission_id)
    me = session_user()
    rank = leaderboard.rank_of_submission(db_session(), sub) if sub.status == states.SCORED else None
    return render_template("submission.html", me=me, s=sub, c=sub.challenge, rank=rank,
                           results=per_class(sub.challenge, sub), show_private=private_visible(sub.challenge, me),
                           can_pick=may_pick(db_session(), me, sub), baseline=costs.baseline(db_session(), sub.challenge))


@student.post("/submissions/<int:submission_id>/final")
@login_required
def final(submission_id: int):
    """Mark or unmark a submission as one of your (at most two) final picks."""
    sub = visible_submission(submission_id)
    apply_change(lambda s: set_final(s, session_user(), sub, request.form.get("final") == "1"), PickError)
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
