"""Account pages: register with a join code (or claim a roster entry), alias, API tokens."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from podium.core.models import ApiToken, Course
from podium.server import fields
from podium.server.auth import issue_token, revoke_token
from podium.server.courses import AccountError, change_password, join, register, set_alias
from podium.server.services import db_session
from podium.server.throttle import (
    ACCOUNT_FAILURES,
    ADDRESS_FAILURES,
    attempt_failed,
    limiter,
    mark_failed,
)
from podium.server.web.auth import begin_session, keep_signed_in, login_required, session_user
from podium.server.web.forms import apply_change

account = Blueprint("account", __name__)


def signed_in_account_key() -> str:
    """The throttling key of the signed-in account (password changes)."""
    return f"user:{session_user().id}"


@account.route("/register", methods=["GET", "POST"])
@limiter.limit(ADDRESS_FAILURES, methods=["POST"], deduct_when=attempt_failed, scope="register-address")
def register_page():
    """Join a course with its code: a new account, or the roster entry the instructor created for you."""
    form = request.form if request.method == "POST" else {"join_code": request.args.get("code", "")}
    if request.method == "POST":
        def enrol(session):
            user = register(session, form.get("join_code", ""), form.get("username", ""), form.get("password", ""),
                            form.get("display_name", ""), form.get("email", ""), form.get("claim_code", ""))
            if form.get("alias", "").strip():
                set_alias(session, user, form["alias"])
            return user

        ok, user = apply_change(enrol, AccountError)
        if not ok:
            mark_failed()
        if ok:
            begin_session(user)
            flash(f"Welcome, {user.display_name or user.username}. You are enrolled.", "ok")
            return redirect(url_for("web.index"))
    return render_template("register.html", me=session_user(), form=form)


@account.get("/account")
@login_required
def account_page():
    """Your profile: alias shown on leaderboards, and your API tokens."""
    me = session_user()
    tokens = db_session().scalars(select(ApiToken).where(ApiToken.user_id == me.id)
                                  .order_by(ApiToken.created_at.desc())).all()
    course = db_session().get(Course, me.course_id) if me.course_id else None
    return render_template("account.html", me=me, tokens=tokens, new_token=None, course=course)


@account.post("/account/alias")
@login_required
def alias():
    """Set or clear the alias other students see on leaderboards."""
    return _account_change(lambda s: set_alias(s, session_user(), request.form.get("alias", "")),
                           lambda _: "Your leaderboard name is saved.")


@account.post("/account/tokens")
@login_required
def new_token():
    """Create an API token and show it once."""
    session = db_session()
    me = session_user()
    try:
        label = fields.text(request.form.get("label"), "token label", fields.TOKEN_LABEL) or "web"
    except fields.FieldError as exc:
        flash(str(exc), "error")
        return redirect(url_for("web.account.account_page"))
    token = issue_token(session, me, label)
    session.commit()
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == me.id).order_by(ApiToken.created_at.desc())).all()
    course = session.get(Course, me.course_id) if me.course_id else None
    resp = render_template("account.html", me=me, tokens=tokens, new_token=token, course=course)
    return resp, 200, {"Cache-Control": "no-store"}


@account.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int):
    """Revoke one of your tokens."""
    session = db_session()
    if revoke_token(session, session_user(), token_id):
        session.commit()
        flash("Token revoked.", "ok")
    else:
        flash("No such token.", "error")
    return redirect(url_for("web.account.account_page"))


@account.post("/account/password")
@login_required
@limiter.limit(ACCOUNT_FAILURES, key_func=signed_in_account_key, deduct_when=attempt_failed, scope="password")
def password():
    """Change your password (failed attempts are throttled like logins)."""
    ok, _ = apply_change(lambda s: change_password(session_user(), request.form.get("current", ""),
                                                   request.form.get("new", "")),
                         AccountError, lambda _: "Your password is changed.")
    if ok:
        keep_signed_in(session_user())  # this browser stays signed in; every other one is signed out
    else:
        mark_failed()
    return redirect(url_for("web.account.account_page"))


@account.post("/account/course")
@login_required
def course():
    """Join (or move to) a course with its join code."""
    return _account_change(lambda s: join(s, session_user(), request.form.get("join_code", "")),
                           lambda joined: f"You are enrolled in {joined.name}.")


def _account_change(change, message):
    """Apply one change to the user's account in a transaction; flash the outcome and go back to the account page."""
    apply_change(change, AccountError, message)
    return redirect(url_for("web.account.account_page"))
