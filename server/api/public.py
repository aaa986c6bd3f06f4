"""REST API under /api/v1 (DESIGN.md): thin views over the domain modules."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, send_file
from sqlalchemy import select

from podium.core import states
from podium.core.models import Challenge, Submission
from podium.server import leaderboard
from podium.server.api import schemas as sch
from podium.server.api.auth import current_user
from podium.server.api.spec import OPTIONAL, PUBLIC, Binary, openapi_document, query, spec
from podium.server.conditional import board_etag, not_modified, rendered, with_validators
from podium.server.errors import ApiError
from podium.server.intake import accept_submission
from podium.server.lifecycle import listed_for
from podium.server.links import absolute_url
from podium.server.lookup import challenge_or_404
from podium.server.samples import public_samples
from podium.server.services import db_session, services
from podium.server.student import my_submissions
from podium.server.submissions import can_view, every_submission_json, submission_json

api = Blueprint("api", __name__, url_prefix="/api/v1")


def challenge_json(c: Challenge, detail: bool = False) -> dict:
    """Public metadata of a challenge, plus links."""
    data = {
        "slug": c.slug, "title": c.title, "summary": c.summary, "kind": c.kind, "labels": list(c.labels),
        "input_shape": list(c.input_shape), "metric": c.metric,
        "opens_at": c.opens_at.isoformat() if c.opens_at else None,
        "deadline": c.deadline.isoformat() if c.deadline else None,
        "daily_limit": c.daily_limit, "max_model_mb": c.max_model_mb, "time_limit_s": c.time_limit_s,
        "max_params": c.max_params, "max_mflops": c.max_mflops,
        "num_classes": c.num_classes, "revealed": c.revealed_at is not None, "team_size": c.team_size,
        "state": c.state,
    }
    if detail:
        data["feature_recipe"] = c.feature_recipe
        data["public_fraction"] = c.public_fraction
        data["memory_limit_mb"] = c.memory_limit_mb
        data["readme"] = c.readme
        data["links"] = {
            "page": absolute_url("web.challenge_page", slug=c.slug),
            "leaderboard": absolute_url("api.get_leaderboard", slug=c.slug),
            "starter_kit": absolute_url("api.download", slug=c.slug, what="starter.zip") if c.starter_sha256 else None,
            "train_data": absolute_url("api.download", slug=c.slug, what="train.npz") if c.train_sha256 else None,
        }
    return data


@api.get("/challenges")
@spec(auth=PUBLIC, responses={200: list[sch.Challenge]})
def list_challenges():
    """The published challenges, newest first (instructors also get drafts and archived ones, marked by `state`)."""
    query = select(Challenge).where(listed_for(current_user(required=False))).order_by(Challenge.created_at.desc())
    rows = db_session().scalars(query).all()
    return jsonify([challenge_json(c) for c in rows])


@api.get("/challenges/<slug>")
@spec(auth=PUBLIC, responses={200: sch.ChallengeDetail})
def get_challenge_detail(slug: str):
    """One challenge's public metadata, feature recipe and download links."""
    return jsonify(challenge_json(challenge_or_404(db_session(), slug), detail=True))


@api.get("/challenges/<slug>/<any('starter.zip', 'train.npz', 'samples.npz'):what>")
@spec(auth=PUBLIC, responses={200: Binary("application/zip", "application/octet-stream")})
def download(slug: str, what: str):
    """The starter kit zip, the public training data, or a few public samples for `podium check`."""
    c = challenge_or_404(db_session(), slug)
    if what == "samples.npz":
        return send_file(public_samples(services().store, c), mimetype="application/octet-stream",
                         as_attachment=True, download_name=f"{slug}-samples.npz")
    sha = c.starter_sha256 if what == "starter.zip" else c.train_sha256
    if not sha:
        raise ApiError(404, "not_found", f"challenge {slug} has no {what}")
    mimetype = "application/zip" if what.endswith(".zip") else "application/octet-stream"
    return send_file(services().store.local_path(sha), mimetype=mimetype, as_attachment=True,
                     download_name=f"{slug}-{what}")


@api.post("/challenges/<slug>/submissions")
@spec(body=sch.ModelUpload, body_media="multipart/form-data", responses={202: sch.Accepted},
      errors=(400, 403, 409, 413, 422, 429, 507), headers={"Idempotency-Key": {
          "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
          "description": "makes a retry safe: the same key from the same user within a day answers the first "
                         "submission (202, same id) instead of making a second one"}})
def create_submission(slug: str):
    """Upload a TorchScript model (multipart field `model`); 202 with id and status."""
    user = current_user()
    sub = accept_submission(db_session(), user, challenge_or_404(db_session(), slug))
    return jsonify({"id": sub.id, "status": sub.status}), 202


@api.get("/submissions/<int:submission_id>")
@spec(responses={200: sch.Submission})
def get_submission(submission_id: int):
    """One submission: its owner, its team's members and instructors only (404 for anyone else, so ids reveal nothing)."""
    user = current_user()
    sub = db_session().get(Submission, submission_id)
    if sub is None or not can_view(sub, user):
        raise ApiError(404, "not_found", f"no submission {submission_id}")
    data = submission_json(sub, user)
    if sub.status == states.SCORED:
        data["rank"] = leaderboard.rank_of_submission(db_session(), sub)
    return jsonify(data)


@api.get("/challenges/<slug>/submissions")
@spec(responses={200: list[sch.Submission]})
def list_submissions(slug: str):
    """The caller's submissions to a challenge (the team's, in a team challenge; every one, for instructors)."""
    user = current_user()
    challenge = challenge_or_404(db_session(), slug)
    if user.is_instructor:
        return current_app.response_class(every_submission_json(services().db, challenge.id, user.id),
                                          mimetype="application/json")
    return jsonify([submission_json(s, user) for s in my_submissions(db_session(), user, challenge)])


@api.get("/challenges/<slug>/leaderboard")
@spec(auth=OPTIONAL, responses={200: sch.Leaderboard, 304: None}, query=sch.LeaderboardQuery)
def get_leaderboard(slug: str):
    """Ranks and scores, one page (?limit=, ?offset=); private scores only for instructors or after the reveal.

    Answers 304 to If-None-Match (or If-Modified-Since) while the board has not changed.
    """
    page = query()
    challenge = challenge_or_404(db_session(), slug)
    viewer = current_user(required=False)
    etag, changed_at = board_etag(db_session(), challenge, "json", bool(viewer and viewer.is_instructor),
                                  page.limit, page.offset)
    unchanged = not_modified(etag, changed_at)
    if unchanged is not None:
        return unchanged
    body = rendered.get(etag, lambda: jsonify(leaderboard.build(db_session(), challenge, viewer, page.limit,
                                                                page.offset)).get_data())
    return with_validators(current_app.response_class(body, mimetype="application/json"), etag, changed_at)


@api.get("/openapi.json")
@spec(auth=PUBLIC, responses={200: None})
def openapi():
    """The OpenAPI 3 description of this API."""
    return jsonify(openapi_document(current_app))
