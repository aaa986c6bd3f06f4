"""REST API under /api/v1 (DESIGN.md): thin views over the domain modules."""
from __future__ import annotations

from flask import Blueprint, jsonify, request, send_file, url_for
from sqlalchemy import select

from server import leaderboard, states
from server.auth import user_for_token
from server.errors import ApiError
from server.models import Challenge, Submission, User
from server.openapi import openapi_document
from server.intake import accept_submission
from server.samples import public_samples
from server.services import db_session, services
from server.submissions import submission_json
from server.web_auth import session_user

api = Blueprint("api", __name__, url_prefix="/api/v1")



def current_user(required: bool = True) -> User | None:
    """The user behind the Bearer token (or the logged-in web session); 401 when required and missing."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "use the header 'Authorization: Bearer <token>'")
        user = user_for_token(db_session(), token.strip())
        if user is None:
            raise ApiError(401, "unauthorized", "unknown or revoked token")
        return user
    # Browser pages may read the API with their login cookie; writes need a token (or a CSRF-checked form).
    user = session_user() if request.method in ("GET", "HEAD") else None
    if user is None and required:
        raise ApiError(401, "unauthorized", "authentication required: send 'Authorization: Bearer <token>'")
    return user


def get_challenge(slug: str) -> Challenge:
    """The challenge with this slug, or 404."""
    challenge = db_session().scalar(select(Challenge).where(Challenge.slug == slug))
    if challenge is None:
        raise ApiError(404, "not_found", f"no challenge named {slug!r}")
    return challenge


def challenge_json(c: Challenge, detail: bool = False) -> dict:
    """Public metadata of a challenge, plus links."""
    data = {
        "slug": c.slug, "title": c.title, "summary": c.summary, "kind": c.kind, "labels": list(c.labels),
        "input_shape": list(c.input_shape), "metric": c.metric,
        "opens_at": c.opens_at.isoformat() if c.opens_at else None,
        "deadline": c.deadline.isoformat() if c.deadline else None,
        "daily_limit": c.daily_limit, "max_model_mb": c.max_model_mb, "time_limit_s": c.time_limit_s,
        "num_classes": c.num_classes, "revealed": c.revealed_at is not None,
    }
    if detail:
        data["feature_recipe"] = c.feature_recipe
        data["public_fraction"] = c.public_fraction
        data["memory_limit_mb"] = c.memory_limit_mb
        data["readme"] = c.readme
        data["links"] = {
            "page": url_for("web.challenge_page", slug=c.slug, _external=True),
            "leaderboard": url_for("api.get_leaderboard", slug=c.slug, _external=True),
            "starter_kit": url_for("api.download", slug=c.slug, what="starter.zip", _external=True) if c.starter_sha256 else None,
            "train_data": url_for("api.download", slug=c.slug, what="train.npz", _external=True) if c.train_sha256 else None,
        }
    return data


@api.get("/challenges")
def list_challenges():
    """All challenges, newest first."""
    rows = db_session().scalars(select(Challenge).order_by(Challenge.created_at.desc())).all()
    return jsonify([challenge_json(c) for c in rows])


@api.get("/challenges/<slug>")
def get_challenge_detail(slug: str):
    """One challenge's public metadata, feature recipe and download links."""
    return jsonify(challenge_json(get_challenge(slug), detail=True))


@api.get("/challenges/<slug>/<any('starter.zip', 'train.npz', 'samples.npz'):what>")
def download(slug: str, what: str):
    """The starter kit zip, the public training data, or a few public samples for `podium check`."""
    c = get_challenge(slug)
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
def create_submission(slug: str):
    """Upload a TorchScript model (multipart field `model`); 202 with id and status."""
    user = current_user()
    sub = accept_submission(db_session(), user, get_challenge(slug))
    return jsonify({"id": sub.id, "status": sub.status}), 202


@api.get("/submissions/<int:submission_id>")
def get_submission(submission_id: int):
    """One submission: its owner and instructors only (404 for anyone else, so ids reveal nothing)."""
    user = current_user()
    sub = db_session().get(Submission, submission_id)
    if sub is None or not (user.is_instructor or sub.user_id == user.id):
        raise ApiError(404, "not_found", f"no submission {submission_id}")
    data = submission_json(sub, user)
    if sub.status == states.SCORED:
        data["rank"] = leaderboard.user_rank(db_session(), sub.challenge, sub.user_id)
    return jsonify(data)


@api.get("/challenges/<slug>/submissions")
def list_submissions(slug: str):
    """The caller's submissions to a challenge (every one, for instructors)."""
    user = current_user()
    challenge = get_challenge(slug)
    query = select(Submission).where(Submission.challenge_id == challenge.id).order_by(Submission.id.desc())
    if not user.is_instructor:
        query = query.where(Submission.user_id == user.id)
    return jsonify([submission_json(s, user) for s in db_session().scalars(query).all()])


@api.get("/challenges/<slug>/leaderboard")
def get_leaderboard(slug: str):
    """Ranks and scores; private scores only for instructors or after the reveal."""
    challenge = get_challenge(slug)
    return jsonify(leaderboard.build(db_session(), challenge, current_user(required=False)))


@api.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API."""
    return jsonify(openapi_document())
