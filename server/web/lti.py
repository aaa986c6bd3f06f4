"""LTI 1.3 pages: the protocol endpoints (/lti/login, /lti/launch, /lti/jwks) and the instructor's LTI pages."""
from __future__ import annotations

import logging
import os

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import select

from podium.core.lti import keys
from podium.core.lti.models import LtiResourceLink
from podium.core.lti.services import ServiceError, fetch_roster
from podium.core.models import Challenge
from podium.server.lookup import challenge_or_404
from podium.server.lti import grades
from podium.server.lti.frames import LTI_SESSION, FrameOrigins, LtiSessionInterface, allow_lms_frames
from podium.server.lti.launch import STATE_COOKIE, STATE_TTL, JwksClients, LaunchError, begin_login, validate_launch
from podium.server.lti.provision import import_roster, provision
from podium.server.lti.registry import list_platforms, tool_urls
from podium.server.services import db_session, services
from podium.server.web.auth import begin_session, exempt_from_csrf, instructor_required, session_user
from podium.server.web.forms import apply_change

log = logging.getLogger("podium.lti")

lti = Blueprint("lti", __name__, url_prefix="/lti")
lti_admin = Blueprint("lti_admin", __name__, url_prefix="/instructor/lti")


def base_url() -> str:
    """Podium's public URL: PODIUM_PUBLIC_URL, else the URL this request came in on."""
    return services().settings.public_url or request.host_url


def _jwks() -> JwksClients:
    return current_app.extensions["podium_lti"]


def init_lti(app) -> None:
    """Wire LTI into the app: cross-site sessions for launches, frame-ancestors, both blueprints."""
    app.session_interface = LtiSessionInterface()
    # Seconds before an unknown platform key id may make the JWKS be fetched again (PyJWT's default is 30).
    app.extensions["podium_lti"] = JwksClients(cooldown=float(os.environ.get("PODIUM_LTI_JWKS_COOLDOWN_S", "5")))
    app.extensions["podium_lti_frames"] = FrameOrigins()
    app.after_request(allow_lms_frames)
    exempt_from_csrf(lti)  # the platform posts these forms; the state cookie and the signed id_token protect them
    app.register_blueprint(lti)
    app.register_blueprint(lti_admin)


def _refuse(exc: LaunchError):
    log.warning("LTI refused (%s) %s: %s", exc.status, exc.who or f"from {request.remote_addr}", exc.reason)
    db_session().rollback()
    return (f"LTI launch refused: {exc.reason}. Pass this message to your LMS administrator.", exc.status,
            {"Content-Type": "text/plain; charset=utf-8"})


@lti.route("/login", methods=["GET", "POST"])
def login():
    """OIDC third-party initiated login: remember a state and nonce, send the browser to the platform."""
    try:
        url, state = begin_login(db_session(), request.values, tool_urls(base_url())["launch_url"])
    except LaunchError as exc:
        exc.who = f"iss={request.values.get('iss')!r} login_hint={request.values.get('login_hint')!r}"
        return _refuse(exc)
    resp = redirect(url)
    resp.set_cookie(STATE_COOKIE + state, "1", max_age=int(STATE_TTL.total_seconds()), secure=True, httponly=True,
                    samesite="None")
    return resp


@lti.post("/launch")
def launch():
    """The platform's signed id_token: validate it fully, sign the person in, land on the challenge."""
    db = db_session()
    try:
        checked = validate_launch(db, request.form, request.cookies, _jwks())
        user, challenge = provision(db, checked)
    except LaunchError as exc:
        return _refuse(exc)
    db.commit()
    begin_session(user)
    session[LTI_SESSION] = True
    log.info("LTI launch: %s (%s) from %s into %s", user.username, user.role, checked.platform.issuer, challenge.slug)
    resp = redirect(url_for("web.challenge_page", slug=challenge.slug))
    resp.delete_cookie(STATE_COOKIE + request.form["state"], secure=True, samesite="None")
    return resp


@lti.get("/jwks")
def jwks():
    """The tool's public keys (current and recently retired)."""
    resp = jsonify(keys.jwks(db_session()))
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@lti_admin.get("/")
@instructor_required
def home():
    """The tool's URLs to paste into the LMS, the registered platforms and the placements seen in launches."""
    db = db_session()
    placements = db.scalars(select(LtiResourceLink).order_by(LtiResourceLink.id)).all()
    return render_template("lti/home.html", me=session_user(), urls=tool_urls(base_url()),
                           platforms=list_platforms(db), placements=placements)


@lti_admin.post("/placements/<int:link_id>/roster")
@instructor_required
def roster(link_id: int):
    """Import the course roster from the LMS (Names and Role Provisioning Services)."""
    rlink = db_session().get(LtiResourceLink, link_id)
    if rlink is None:
        abort(404)
    apply_change(lambda db: import_roster(db, rlink, fetch_roster(db, rlink)), ServiceError,
                 done=lambda counts: f"Imported {counts[0]} students and {counts[1]} instructors from the LMS.",
                 refused_prefix="Roster import failed: ")
    return redirect(url_for("lti_admin.home"), code=303)


@lti_admin.post("/challenges/<slug>/passback/<int:link_id>")
@instructor_required
def send_again(slug: str, link_id: int):
    """Send a student's score to the LMS again."""
    db = db_session()
    challenge = challenge_or_404(db, slug)
    if grades.send_again(db, services().celery, challenge, link_id):
        flash("Score queued for the LMS.", "ok")
    else:
        flash("Nothing to send for this student yet.", "error")
    return redirect(url_for("web.instructor.dashboard", slug=slug) + "#lti", code=303)


@lti_admin.app_template_global("lti_passbacks")
def lti_passbacks(challenge: Challenge) -> list[grades.PassbackRow]:
    """For the challenge dashboard: passback state per LTI student."""
    return grades.status(db_session(), challenge)
